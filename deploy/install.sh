#!/bin/sh
# install.sh - installs, rolls back and reports alog-edge releases on a device.
# POSIX sh for busybox ash with busybox applets only.
#
#   sh install.sh install BUNDLE.tar.gz|BUNDLE.tar.xz [--force] [--trust-key PUB] [--prefix P]
#   sh install.sh install --staged DIR [--force] [--trust-key PUB] [--prefix P]
#   sh install.sh rollback [--prefix P]
#   sh install.sh status [--prefix P]        one JSON object on stdout
#   sh install.sh gc [--prefix P]            keep current and previous; clear stale incoming/
#
# Layout under the prefix P (default /opt/alog-edge): releases/<version>/, current and previous
# (symlinks to releases/<version>, switched by renaming a new link over them), keys/*.pub (trusted
# minisign keys), state.json, history.jsonl, incoming/ (uploads), etc/alog-edge.conf, run/, var/.
#
# install: check the archive (one top folder, files and folders only, no link, no absolute or
# climbing path), verify the manifest's signature with the verifier already installed
# (current/bin/alog-edge verify; on a first install the new release's own verifier checks it after
# unpacking: the flasher verified the bundle on its host and uploaded --trust-key), unpack into
# releases/<version>.partial, verify every file's size, mode and sha256, rename to
# releases/<version>, run its selftest, switch `current`, restart the service and watch it for
# ALOG_EDGE_HEALTH_SECONDS; if it does not stay up, the previous release is restored by itself.
# --staged DIR: DIR holds MANIFEST.json, its .minisig and any subset of the files; a missing file
# is hard-linked (else copied) from current/ when the current manifest lists it with the same
# sha256. DIR is removed after a successful install. A kill at any instant leaves `current` at the
# old release or the new one, complete; the next run cleans up after it.
#
# Exit status: 0 done; 1 failed (current unchanged); 2 usage; 3 this version is installed already
# (pass --force); 4 the new release failed its selftest (not made current); 5 the bundle does not
# verify (signature, key, files, architecture, glibc); 6 the service did not stay up and the previous
# release was restored; 7 another install.sh holds the lock. Failures print one line on stderr:
# "error: <why>".
#
# P/etc/alog-edge.conf (shell variables): ALOG_EDGE_LOG (the log the service follows),
# ALOG_EDGE_HEALTH_SECONDS (default 5), ALOG_EDGE_SERVICE (auto: systemd when it knows the unit
# alog-edge.service, else the busybox init script; or systemd, init, none).
# Environment for host-side tests: ALOG_EDGE_EMULATOR (command prefix that runs the release's
# binaries, e.g. qemu-aarch64 -L /usr/aarch64-linux-gnu), ALOG_EDGE_DEVICE_ARCH (instead of
# uname -m), ALOG_EDGE_KILL_AT=<step> (SIGKILL itself at that step), ALOG_EDGE_TRACE=<file>
# (append each step's name).

PREFIX=/opt/alog-edge
CMD=
BUNDLE=
STAGED=
FORCE=0
TRUST_KEY=
LOCKED=0
WORK=
PARTIAL=
EMU=${ALOG_EDGE_EMULATOR:-}

usage() {
    echo "error: $1 (usage: install.sh install BUNDLE|--staged DIR [--force] [--trust-key PUB] | rollback | status | gc, with [--prefix P])" >&2
    exit 2
}

cleanup() {
    [ -n "$WORK" ] && rm -rf "$WORK"
    [ -n "$PARTIAL" ] && rm -rf "$PARTIAL"
    [ "$LOCKED" = 1 ] && rm -rf "$PREFIX/.lock"
    LOCKED=0
}

die() {
    code=$1
    shift
    echo "error: $*" >&2
    cleanup
    exit "$code"
}

step() {
    if [ -n "${ALOG_EDGE_TRACE:-}" ]; then echo "$1" >>"$ALOG_EDGE_TRACE"; fi
    if [ "${ALOG_EDGE_KILL_AT:-}" = "$1" ]; then kill -KILL $$; fi
    :
}

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || usage "--prefix needs a folder"; PREFIX=$2; shift ;;
        --force) FORCE=1 ;;
        --trust-key) [ $# -ge 2 ] || usage "--trust-key needs a public key file"; TRUST_KEY=$2; shift ;;
        --staged) [ $# -ge 2 ] || usage "--staged needs a folder"; STAGED=$2; shift ;;
        -h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        -*) usage "unknown option $1" ;;
        *) if [ -z "$CMD" ]; then CMD=$1
           elif [ "$CMD" = install ] && [ -z "$BUNDLE" ]; then BUNDLE=$1
           else usage "unexpected argument $1"; fi ;;
    esac
    shift
done
case "$PREFIX" in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
PREFIX=${PREFIX%/}

trap 'cleanup; exit 1' INT TERM HUP

ALOG_EDGE_HEALTH_SECONDS=5
ALOG_EDGE_SERVICE=auto
# shellcheck disable=SC1091
[ -f "$PREFIX/etc/alog-edge.conf" ] && . "$PREFIX/etc/alog-edge.conf"

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# The version a manifest names (its first line holds the head fields; the charset is the
# manifest's own rule, so the value is safe in paths).
manifest_version() {
    head -n 1 "$1" 2>/dev/null | sed -n 's/.*"version": "\([0-9A-Za-z][0-9A-Za-z._+-]*\)".*/\1/p'
}

manifest_target() {
    head -n 1 "$1" 2>/dev/null | sed -n 's/.*"target": "\(x86_64\|aarch64\)".*/\1/p'
}

# "path size mode sha256" per listed file.
manifest_files() {
    sed -n 's/^ *{"path": "\([^"]*\)", "size": \([0-9]*\), "mode": "\(0[0-7]*\)", "sha256": "\([0-9a-f]*\)".*/\1 \2 \3 \4/p' "$1"
}

# The release folder a link points to (releases/NAME -> NAME), empty when none.
link_release() {
    l=$(readlink "$PREFIX/$1" 2>/dev/null) || return 0
    case "$l" in releases/*) [ -d "$PREFIX/$l" ] && echo "${l#releases/}" ;; esac
}

release_version() {
    [ -n "$1" ] && manifest_version "$PREFIX/releases/$1/MANIFEST.json"
}

switch_link() { # switch_link NAME RELEASE: NAME -> releases/RELEASE, atomically
    rm -f "$PREFIX/$1.new"
    ln -s "releases/$2" "$PREFIX/$1.new" || return 1
    mv -f -T "$PREFIX/$1.new" "$PREFIX/$1"
}

lock() {
    mkdir -p "$PREFIX" || die 1 "$PREFIX: cannot create the prefix"
    if ! mkdir "$PREFIX/.lock" 2>/dev/null; then
        pid=$(cat "$PREFIX/.lock/pid" 2>/dev/null)
        if [ -n "$pid" ] && [ "$pid" != $$ ] && kill -0 "$pid" 2>/dev/null; then
            echo "error: $PREFIX: another install.sh (pid $pid) is running" >&2
            exit 7
        fi
        rm -rf "$PREFIX/.lock"
        mkdir "$PREFIX/.lock" 2>/dev/null || die 7 "$PREFIX: cannot take the lock"
    fi
    LOCKED=1
    echo $$ >"$PREFIX/.lock/pid"
}

# Undo or finish what a killed run left: temporary links and folders, a half-done reinstall.
recover() {
    rm -f "$PREFIX/current.new" "$PREFIX/previous.new" "$PREFIX/state.json.tmp" "$PREFIX/history.jsonl.tmp"
    cur=$(readlink "$PREFIX/current" 2>/dev/null)
    case "$cur" in releases/*.force) finish_reinstall "${cur#releases/}" ;; esac
    cur=$(readlink "$PREFIX/current" 2>/dev/null)
    prev=$(readlink "$PREFIX/previous" 2>/dev/null)
    for d in "$PREFIX"/releases/*.partial "$PREFIX"/releases/*.force "$PREFIX"/releases/*.copy \
             "$PREFIX"/releases/.work.*; do
        [ -e "$d" ] || continue
        [ "releases/${d##*/}" = "$cur" ] || [ "releases/${d##*/}" = "$prev" ] || rm -rf "$d"
    done
    # a dangling current (never left by this script, but a device may have lost it): previous
    if [ -L "$PREFIX/current" ] && [ ! -d "$PREFIX/current/" ] && [ -n "$(link_release previous)" ]; then
        switch_link current "$(link_release previous)"
    fi
}

# A forced reinstall of the running version: current -> V.force while V is rebuilt from it.
finish_reinstall() {
    v=${1%.force}
    rm -rf "$PREFIX/releases/$v" "$PREFIX/releases/$v.copy"
    step reinstall-copy
    cp -a -l "$PREFIX/releases/$v.force" "$PREFIX/releases/$v.copy" 2>/dev/null ||
        cp -a "$PREFIX/releases/$v.force" "$PREFIX/releases/$v.copy" || return 1
    mv "$PREFIX/releases/$v.copy" "$PREFIX/releases/$v" || return 1
    step reinstall-switch
    switch_link current "$v" || return 1
    rm -rf "$PREFIX/releases/$v.force"
}

history_add() { # history_add VERSION ACTION RESULT SELFTEST
    h=$PREFIX/history.jsonl
    { [ -f "$h" ] && cat "$h"
      printf '{"version": "%s", "action": "%s", "result": "%s", "selftest": %s, "time": "%s"}\n' \
          "$1" "$2" "$3" "$4" "$(now)"; } >"$h.tmp" && mv -f "$h.tmp" "$h"
}

service_kind() {
    case "$ALOG_EDGE_SERVICE" in
        none|init|systemd) echo "$ALOG_EDGE_SERVICE" ;;
        *) if command -v systemctl >/dev/null 2>&1 && systemctl cat alog-edge.service >/dev/null 2>&1
           then echo systemd; else echo init; fi ;;
    esac
}

init_script() {
    ALOG_EDGE_PREFIX=$PREFIX sh "$PREFIX/current/service/alog-edge.init" "$1"
}

service_state() {
    case "$(service_kind)" in
        none) echo none ;;
        systemd) if systemctl is-active --quiet alog-edge.service; then echo running; else echo stopped; fi ;;
        init) if [ -f "$PREFIX/current/service/alog-edge.init" ] && init_script status >/dev/null 2>&1
              then echo running; else echo stopped; fi ;;
    esac
}

# Restart the service on the current release and watch it. @return 0 when it stays up.
restart_and_watch() {
    kind=$(service_kind)
    [ "$kind" = none ] && return 0
    if [ "$kind" = systemd ]; then
        systemctl restart alog-edge.service >/dev/null 2>&1 || return 1
    else
        init_script restart >/dev/null 2>&1 || return 1
    fi
    step health-watch
    first=$(cat "$PREFIX/run/alog-edge.pid" 2>/dev/null)
    sleep "$ALOG_EDGE_HEALTH_SECONDS"
    [ "$(service_state)" = running ] || return 1
    [ "$kind" = systemd ] || [ "$(cat "$PREFIX/run/alog-edge.pid" 2>/dev/null)" = "$first" ]
}

# Run a release's binary (through the emulator for host-side tests of another architecture).
run_bin() { # run_bin RELEASE_DIR ARGS...
    d=$1
    shift
    # shellcheck disable=SC2086
    $EMU "$d/bin/alog-edge" "$@"
}

# verify DIR [--manifest-only]: with the installed verifier, else DIR's own (first install).
verify_with() {
    dir=$1
    shift
    if [ -x "$PREFIX/current/bin/alog-edge" ]; then verifier=$PREFIX/current/
    elif [ "$1" = --manifest-only ]; then return 0
    else verifier=$dir; fi
    out=$(run_bin "$verifier" verify --keys "$PREFIX/keys" "$@" "$dir" 2>&1 >/dev/null)
    rc=$?
    [ $rc = 0 ] && return 0
    line=$(echo "$out" | grep '^error: ' | head -n 1)
    [ $rc = 5 ] && die 5 "${line#error: }"
    die 1 "$verifier/bin/alog-edge cannot verify on this device (exit $rc): $(echo "$out" | tail -n 1)"
}

trust_key() {
    [ -f "$1" ] || die 1 "$1: no such public key"
    id=$(sed -n 2p "$1" | base64 -d 2>/dev/null | od -An -tx1 -j2 -N8 |
         awk '{for (i = NF; i > 0; i--) printf "%s", toupper($i)}')
    case "$id" in ????????????????) ;; *) die 1 "$1: not a minisign public key" ;; esac
    mkdir -p "$PREFIX/keys" || die 1 "$PREFIX/keys: cannot create it"
    if [ -f "$PREFIX/keys/$id.pub" ]; then
        cmp -s "$1" "$PREFIX/keys/$id.pub" || [ "$(sed -n 2p "$1")" = "$(sed -n 2p "$PREFIX/keys/$id.pub")" ] ||
            die 1 "$1: another key with id $id is trusted already"
        return 0
    fi
    cp "$1" "$PREFIX/keys/.$id.pub.tmp" && mv -f "$PREFIX/keys/.$id.pub.tmp" "$PREFIX/keys/$id.pub" ||
        die 1 "$PREFIX/keys: cannot add key $id"
}

# Check a tar listing: one top folder, regular files and folders only, safe names.
check_listing() { # check_listing BUNDLE FLAG
    tar -t"$2"vf "$1" >"$WORK/listing" 2>"$WORK/tar.err" ||
        die 5 "$1: not a readable bundle archive ($(tail -n 1 "$WORK/tar.err"))"
    # tar strips a leading "/" or "../" itself (and says so): such a member is refused, not rewritten
    if grep -q "emoving leading '/'" "$WORK/tar.err"; then
        die 5 "$1: a member has an absolute path or unsafe name, refused ($(head -n 1 "$WORK/tar.err"))"
    fi
    grep -q "emoving leading" "$WORK/tar.err" &&
        die 5 "$1: a member has a climbing path, refused ($(head -n 1 "$WORK/tar.err"))"
    bad=$(grep -v '^[-d]' "$WORK/listing" | head -n 1)
    [ -z "$bad" ] || die 5 "$1: holds a link or special file, refused: ${bad##* }"
    grep -q ' -> ' "$WORK/listing" && die 5 "$1: holds a hard link, refused: $(grep ' -> ' "$WORK/listing" | head -n 1 | sed 's/.* \([^ ]* -> [^ ]*\)$/\1/')"
    awk '{print $NF}' "$WORK/listing" | sed 's,/$,,' >"$WORK/names"
    bad=$(grep -v '^[0-9A-Za-z_+.@-][0-9A-Za-z_+.@/-]*$' "$WORK/names" | head -n 1)
    [ -z "$bad" ] || die 5 "$1: member $bad: absolute path or unsafe name, refused"
    bad=$(grep -E '(^|/)\.\.?(/|$)' "$WORK/names" | head -n 1)
    [ -z "$bad" ] || die 5 "$1: member $bad: climbing path, refused"
    tops=$(cut -d/ -f1 "$WORK/names" | sort -u | wc -l)
    [ "$tops" -eq 1 ] || die 5 "$1: needs one top folder, has $tops"
    TOP=$(head -n 1 "$WORK/names" | cut -d/ -f1)
}

cmd_install() {
    [ -n "$BUNDLE" ] && [ -n "$STAGED" ] && usage "install takes a bundle or --staged DIR, not both"
    [ -n "$BUNDLE" ] || [ -n "$STAGED" ] || usage "install needs a bundle or --staged DIR"
    lock
    step recover
    recover
    mkdir -p "$PREFIX/releases" "$PREFIX/keys" "$PREFIX/incoming" || die 1 "$PREFIX: cannot create its folders"
    WORK=$PREFIX/releases/.work.$$
    mkdir "$WORK" || die 1 "$WORK: cannot create it"
    [ -n "$TRUST_KEY" ] && trust_key "$TRUST_KEY"

    step check-archive
    if [ -n "$BUNDLE" ]; then
        [ -f "$BUNDLE" ] || die 1 "$BUNDLE: no such bundle"
        # a bundle's gzip header is fixed (no name, no time, OS "unknown"): anything else is not one
        magic=$(dd if="$BUNDLE" bs=10 count=1 2>/dev/null | od -An -tx1 | tr -d ' \n')
        case "$magic" in
            1f8b08000000000000ff) z=z ;;
            1f8b*) die 5 "$BUNDLE: gzip header $magic is not a bundle's (1f8b08000000000000ff): altered" ;;
            fd377a585a00*) z=J ;;
            *) die 5 "$BUNDLE: not a bundle (.tar.gz or .tar.xz)" ;;
        esac
        check_listing "$BUNDLE" "$z"
        mkdir "$WORK/head" && tar -x"$z"f "$BUNDLE" -C "$WORK/head" "$TOP/MANIFEST.json" "$TOP/MANIFEST.json.minisig" \
            2>"$WORK/tar.err" || die 5 "$BUNDLE: has no signed manifest ($TOP/MANIFEST.json and .minisig): unsigned"
        HEAD=$WORK/head/$TOP
    else
        [ -d "$STAGED" ] || die 1 "$STAGED: no such folder"
        [ -f "$STAGED/MANIFEST.json" ] && [ -f "$STAGED/MANIFEST.json.minisig" ] ||
            die 5 "$STAGED: has no signed manifest (MANIFEST.json and .minisig): unsigned"
        mkdir "$WORK/head" && cp "$STAGED/MANIFEST.json" "$STAGED/MANIFEST.json.minisig" "$WORK/head/" ||
            die 1 "$WORK: cannot copy the manifest"
        HEAD=$WORK/head
    fi
    VERSION=$(manifest_version "$HEAD/MANIFEST.json")
    TARGET=$(manifest_target "$HEAD/MANIFEST.json")
    [ -n "$VERSION" ] && [ -n "$TARGET" ] || die 5 "MANIFEST.json: no version or target"
    [ -z "$BUNDLE" ] || [ "$TOP" = "alog-edge-$VERSION-$TARGET" ] ||
        die 5 "$BUNDLE: top folder $TOP does not match the manifest (alog-edge-$VERSION-$TARGET)"
    arch=${ALOG_EDGE_DEVICE_ARCH:-$(uname -m)}
    [ "$arch" = arm64 ] && arch=aarch64
    [ "$TARGET" = "$arch" ] || die 5 "the bundle is for $TARGET, this device is $arch"

    step verify-signature
    verify_with "$HEAD" --manifest-only
    CURRENT=$(link_release current)
    OLD_PREVIOUS=$(link_release previous)
    if [ -n "$CURRENT" ] && [ "$(release_version "$CURRENT")" = "$VERSION" ] && [ "$FORCE" != 1 ]; then
        echo "error: version $VERSION is installed and current already (pass --force to install it again)" >&2
        cleanup
        exit 3
    fi
    reinstall=0
    [ -n "$CURRENT" ] && [ "$(release_version "$CURRENT")" = "$VERSION" ] && reinstall=1
    NAME=$VERSION
    [ "$reinstall" = 1 ] && NAME=$VERSION.force
    [ "$reinstall" = 0 ] && [ "$NAME" != "$OLD_PREVIOUS" ] && rm -rf "$PREFIX/releases/$NAME"

    step unpack
    PARTIAL=$PREFIX/releases/$NAME.partial
    rm -rf "$PARTIAL"
    mkdir "$PARTIAL" || die 1 "$PARTIAL: cannot create it"
    if [ -n "$BUNDLE" ]; then
        # its messages in a variable: on a full disk no file can hold them
        err=$(tar -x"$z"f "$BUNDLE" -C "$PARTIAL" --strip-components=1 2>&1) ||
            die 1 "cannot unpack $BUNDLE into $PARTIAL: $(echo "$err" | tail -n 1)"
    else
        assemble_staged
    fi

    step check-files
    verify_with "$PARTIAL"
    [ "$(manifest_version "$PARTIAL/MANIFEST.json")" = "$VERSION" ] || die 5 "the manifest changed while installing"

    step rename
    if [ "$NAME" = "$OLD_PREVIOUS" ]; then # reinstalling the previous release: replace it in turn
        rm -f "$PREFIX/previous"
        rm -rf "$PREFIX/releases/$NAME"
        OLD_PREVIOUS=
    fi
    mv "$PARTIAL" "$PREFIX/releases/$NAME" || die 1 "cannot rename $PARTIAL"
    PARTIAL=

    step selftest
    out=$(run_bin "$PREFIX/releases/$NAME" selftest "$PREFIX/releases/$NAME/models" 2>&1)
    rc=$?
    if [ $rc != 0 ]; then
        rm -rf "$PREFIX/releases/$NAME"
        history_add "$VERSION" install selftest-failed false
        write_state
        die 4 "release $VERSION failed its selftest (exit $rc): $(echo "$out" | grep -v '^$' | tail -n 1)"
    fi

    step switch
    if [ "$reinstall" = 0 ]; then
        [ -n "$CURRENT" ] && { switch_link previous "$CURRENT" || die 1 "$PREFIX/previous: cannot switch"; }
        step switch-current
        switch_link current "$NAME" || die 1 "$PREFIX/current: cannot switch"
    else
        switch_link current "$NAME" || die 1 "$PREFIX/current: cannot switch"
        finish_reinstall "$NAME" || die 1 "cannot finish reinstalling $VERSION"
        NAME=$VERSION
    fi

    step restart
    if ! restart_and_watch; then
        step health-rollback
        if [ "$reinstall" = 0 ]; then
            if [ -n "$CURRENT" ]; then
                switch_link current "$CURRENT"
                if [ -n "$OLD_PREVIOUS" ]; then switch_link previous "$OLD_PREVIOUS"; else rm -f "$PREFIX/previous"; fi
                restart_and_watch >/dev/null 2>&1
            else
                rm -f "$PREFIX/current"
            fi
            rm -rf "$PREFIX/releases/$NAME"
        fi
        history_add "$VERSION" install health-failed true
        write_state
        die 6 "the service did not stay up on $VERSION (see $PREFIX/var/alog-edge.log); ${CURRENT:+restored $(release_version "$CURRENT")}${CURRENT:-no release is current}"
    fi

    step commit
    history_add "$VERSION" "$([ "$reinstall" = 1 ] && echo reinstall || echo install)" ok true
    write_state
    [ -n "$STAGED" ] && rm -rf "$STAGED"
    cleanup
    echo "installed $VERSION ($TARGET) in $PREFIX: selftest passed, service $(service_state)"
}

# Build PARTIAL from the staged files plus unchanged files of the current release.
assemble_staged() {
    cp "$STAGED/MANIFEST.json" "$STAGED/MANIFEST.json.minisig" "$PARTIAL/" || die 1 "$PARTIAL: cannot copy the manifest"
    have=$WORK/current-files
    : >"$have"
    [ -f "$PREFIX/current/MANIFEST.json" ] && manifest_files "$PREFIX/current/MANIFEST.json" |
        awk '{print $1, $4}' >"$have"
    manifest_files "$STAGED/MANIFEST.json" >"$WORK/files"
    [ -s "$WORK/files" ] || die 5 "$STAGED/MANIFEST.json: lists no file"
    while read -r path size mode sha; do
        case "/$path/" in */../*|*/./*|*//*) die 5 "$STAGED/MANIFEST.json: unsafe path $path" ;; esac
        dest=$PARTIAL/$path
        [ -d "${dest%/*}" ] || mkdir -p "${dest%/*}" || die 1 "${dest%/*}: cannot create it"
        if [ -f "$STAGED/$path" ] && [ ! -L "$STAGED/$path" ]; then
            # a hard link: the staged folder goes once installed (a copy where links fail)
            ln "$STAGED/$path" "$dest" 2>/dev/null || cp "$STAGED/$path" "$dest" ||
                die 1 "cannot copy $STAGED/$path into $PARTIAL"
        elif grep -q -x -F "$path $sha" "$have"; then
            ln "$PREFIX/current/$path" "$dest" 2>/dev/null || cp "$PREFIX/current/$path" "$dest" ||
                die 1 "cannot link $PREFIX/current/$path into $PARTIAL"
        else
            die 5 "$STAGED/$path: missing from the upload and not unchanged in the current release"
        fi
        chmod "$mode" "$dest" || die 1 "$dest: cannot set its mode"
        : "$size"
    done <"$WORK/files"
}

json_join() { # lines -> a, b
    awk 'NR > 1 { printf ", " } { printf "%s", $0 }'
}

json_list() { # lines -> "a", "b"
    sed 's/.*/"&"/' | json_join
}

json_or_null() { if [ -n "$1" ]; then printf '"%s"' "$1"; else printf null; fi; }

status_json() {
    st_cur=$(link_release current)
    st_prev=$(link_release previous)
    st_target=
    [ -n "$st_cur" ] && st_target=$(manifest_target "$PREFIX/releases/$st_cur/MANIFEST.json")
    st_releases=$(for d in "$PREFIX"/releases/*; do
                   [ -d "$d" ] && [ -f "$d/MANIFEST.json" ] && manifest_version "$d/MANIFEST.json"
               done | sort -u | json_list)
    st_keys=$(for k in "$PREFIX"/keys/*.pub; do [ -f "$k" ] && basename "$k" .pub; done | json_list)
    st_history=
    [ -f "$PREFIX/history.jsonl" ] && st_history=$(json_join <"$PREFIX/history.jsonl")
    printf '{"prefix": "%s", "current": %s, "previous": %s, "target": %s, "service": "%s", "releases": [%s], "keys": [%s], "history": [%s]}\n' \
        "$PREFIX" "$(json_or_null "$(release_version "$st_cur")")" "$(json_or_null "$(release_version "$st_prev")")" \
        "$(json_or_null "$st_target")" "$(service_state)" "$st_releases" "$st_keys" "$st_history"
}

write_state() {
    status_json >"$PREFIX/state.json.tmp" && mv -f "$PREFIX/state.json.tmp" "$PREFIX/state.json"
}

cmd_rollback() {
    lock
    recover
    cur=$(link_release current)
    prev=$(link_release previous)
    [ -n "$prev" ] && [ "$prev" != "$cur" ] || die 1 "$PREFIX: no previous release to roll back to"
    step rollback-selftest
    out=$(run_bin "$PREFIX/releases/$prev" selftest "$PREFIX/releases/$prev/models" 2>&1) ||
        die 4 "previous release $(release_version "$prev") fails its selftest: $(echo "$out" | tail -n 1)"
    step rollback-switch
    switch_link current "$prev" || die 1 "$PREFIX/current: cannot switch"
    if [ -n "$cur" ]; then switch_link previous "$cur"; fi
    step rollback-restart
    result=ok
    restart_and_watch || result=service-down
    history_add "$(release_version "$prev")" rollback "$result" true
    write_state
    cleanup
    [ "$result" = ok ] || { echo "error: rolled back to $(release_version "$prev"), but the service did not stay up" >&2; exit 6; }
    echo "rolled back to $(release_version "$prev") in $PREFIX (previous: $(release_version "$cur"))"
}

cmd_gc() {
    lock
    recover
    cur=$(link_release current)
    prev=$(link_release previous)
    removed=0
    for d in "$PREFIX"/releases/*; do
        [ -e "$d" ] || continue
        n=${d##*/}
        [ "$n" = "$cur" ] || [ "$n" = "$prev" ] && continue
        rm -rf "$d" && removed=$((removed + 1))
    done
    stale=0
    if [ -d "$PREFIX/incoming" ]; then
        for d in $(find "$PREFIX/incoming" -mindepth 1 -maxdepth 1 -mmin +60 2>/dev/null); do
            rm -rf "$d" && stale=$((stale + 1))
        done
    fi
    write_state
    cleanup
    echo "gc: removed $removed release(s) and $stale stale upload(s); kept ${cur:-none} and ${prev:-none}"
}

case "$CMD" in
    install) cmd_install ;;
    rollback) cmd_rollback ;;
    status) status_json ;;
    gc) cmd_gc ;;
    "") usage "no command" ;;
    *) usage "unknown command $CMD" ;;
esac
