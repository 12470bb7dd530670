#!/bin/sh
# DEV-ONLY stand-in for deploy/install.sh (never committed): install --staged, status.
set -u
cmd=$1; shift
P=/opt/alog-edge; staged=; force=
while [ $# -gt 0 ]; do case $1 in --prefix) P=$2; shift;; --staged) staged=$2; shift;; --force) force=1;; esac; shift; done
fail() { echo "error: $*" >&2; exit 1; }
if [ "$cmd" = status ]; then
  cur=$(readlink "$P/current" 2>/dev/null | sed 's#.*/##')
  printf '{"current": "%s", "previous": null, "target": "x86_64", "history": [%s], "service": "stopped"}\n' "$cur" "$(cat $P/hist 2>/dev/null | paste -sd, -)"
  exit 0
fi
m=$staged/MANIFEST.json
v=$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' "$m" | head -1)
[ -n "$v" ] || fail "no version"
cur=$(readlink "$P/current" 2>/dev/null | sed 's#.*/##')
[ "$cur" = "$v" ] && [ -z "$force" ] && { echo "error: $v is current" >&2; exit 4; }
R=$P/releases/$v.partial; rm -rf "$R"; mkdir -p "$R" || fail mkdir
grep '"path"' "$m" | sed 's/.*"path": "\([^"]*\)".*"sha256": "\([0-9a-f]*\)".*/\1 \2/' | while read -r f s; do
  mkdir -p "$(dirname "$R/$f")"
  if [ -f "$staged/$f" ]; then cp "$staged/$f" "$R/$f" || exit 1
  elif [ -f "$P/current/$f" ] && [ "$(sha256sum "$P/current/$f" | cut -d' ' -f1)" = "$s" ]; then ln "$P/current/$f" "$R/$f" || cp "$P/current/$f" "$R/$f" || exit 1
  else echo "error: $f missing" >&2; exit 1; fi
  [ "$(sha256sum "$R/$f" | cut -d' ' -f1)" = "$s" ] || { echo "error: $f sha" >&2; exit 1; }
done || exit 1
cp "$m" "$R/MANIFEST.json"; cp "$m.minisig" "$R/MANIFEST.json.minisig"
chmod 755 "$R/bin/alog-edge" "$R/install.sh"
rm -rf "$P/releases/$v"; mv "$R" "$P/releases/$v" || fail mv
"$P/releases/$v/bin/alog-edge" selftest "$P/releases/$v/models" 2>/dev/null || fail selftest
ln -sfn "releases/$v" "$P/current.new" && mv -T "$P/current.new" "$P/current" || fail switch
echo "{\"version\": \"$v\", \"action\": \"install\", \"result\": \"ok\", \"selftest\": \"passed\", \"time\": 0}" >> "$P/hist"
rm -rf "$staged"
