# alog-edge serial agent: runs on the device's console (busybox ash + applets), one op per header line.
# Host -> device: a header line, then for C and X exactly <wire> payload bytes. Device -> host: lines
# "~ae <op> <args>" (numbers doubled, so a corrupted reply never passes for a good one). The tty is raw with
# VMIN 0 / VTIME 10: every read returns after 1 s of silence, so a lost byte never hangs dd.
# Usage: sh serial_agent.sh SAVED_STTY
set -f
saved=$1
stty raw -echo min 0 time 10 || exit 1
say() { printf '\n~ae %s\n' "$*"; }
part= path= sz=0 idle=0 tok=- fin=-

# Discard input until the line has been silent for 1 s (after a bad header or payload), then resync.
bad() {
  say F "$tok" "$sz" "$sz"
  cat > /dev/null
  say R "$tok" "$sz" "$sz"
}

size_of() { if [ -f "$1" ]; then wc -c < "$1"; else echo 0; fi; }

chunk() { # C off raw wire enc sha
  [ $# -eq 6 ] || { bad; return; }
  rm -f c d
  dd of=c bs="$4" count=1 iflag=fullblock 2>/dev/null || { bad; return; }
  f=c
  if [ "$5" = b ]; then base64 -d c > d 2>/dev/null || { bad; return; }; f=d; fi
  set -- "$@" $(sha256sum "$f")
  [ "$7" = "$6" ] && [ -n "$part" ] && [ "$(wc -c < "$f")" = "$3" ] || { bad; return; }
  if [ "$2" -eq "$sz" ] 2>/dev/null; then
    cat "$f" >> "$part" || { say E append-failed; return; }
    sz=$((sz + $3))
  elif [ "$2" -gt "$sz" ] 2>/dev/null; then
    bad; return  # a chunk went missing before this one
  fi  # else: a duplicate of a chunk already appended
  say A "$tok" "$sz" "$sz"
}

finish() { # E comp sha
  [ -n "$part" ] || { say D "$tok" no-file no-file; return; }
  case "$2" in
    xz) unxz -c "$part" > "$path.tmp" 2>/dev/null ;;
    gz) gunzip -c "$part" > "$path.tmp" 2>/dev/null ;;
    *) cp "$part" "$path.tmp" ;;
  esac || { rm -f "$part" "$path.tmp"; part= sz=0; fin=decompress; say D "$tok" $fin $fin; return; }
  set -- "$@" $(sha256sum "$path.tmp")
  if [ "$4" != "$3" ]; then rm -f "$part" "$path.tmp"; part= sz=0; fin=sha256; say D "$tok" $fin $fin; return; fi
  mv -f "$path.tmp" "$path" && rm -f "$part" || { fin=rename; say D "$tok" $fin $fin; return; }
  part= sz=0 fin=ok
  say D "$tok" ok ok
}

run() { # X id wire sha seconds
  [ $# -eq 5 ] || { bad; return; }
  rm -f x
  dd of=x bs="$3" count=1 iflag=fullblock 2>/dev/null
  set -- "$@" $(sha256sum x)
  [ "$6" = "$4" ] || { bad; return; }
  if [ "$(cat run.id 2>/dev/null)" != "$2" ]; then  # never twice: a resent X is answered from run.rc
    rm -f run.rc; echo "$2" > run.id
    timeout "$5" sh x > run.out 2> run.err < /dev/null
    echo $? > run.rc
  fi
  rc=$(cat run.rc 2>/dev/null || echo -)
  say Y "$2" "$rc" "$rc"
}

get() { # G path: base64 between a B line (size, sha256) and a Z line
  if [ ! -f "$2" ]; then say B - -; return; fi
  set -- "$@" $(sha256sum "$2")
  say B "$(wc -c < "$2")" "$3"
  base64 < "$2"
  say Z z z
}

say K up up
while :; do
  line=
  if ! IFS= read -r line; then
    if [ -n "$line" ]; then bad; continue; fi  # a header cut by silence
    idle=$((idle + 1))
    [ "$idle" -ge 60 ] && break  # nobody on the line for a minute: give the console back
    continue
  fi
  idle=0
  set -- $line
  case "$1" in
    "") ;;
    C) chunk "$@" ;;
    P) say K "$2" "$2" ;;
    O) [ $# -eq 4 ] && [ ${#4} -eq 16 ] || { bad; continue; }
       # the path is checked like a payload: a flipped bit must not open another file
       set -- "$@" $(printf '%s %s' "$2" "$3" | sha256sum)
       case "$5" in "$4"*) ;; *) bad; continue ;; esac
       tok=$2 path=$3 part=$3.part fin=-
       mkdir -p "$(dirname "$path")" && sz=$(size_of "$part") && say S "$tok" "$sz" "$sz" || say E open-failed ;;
    S) say S "$tok" "$sz" "$sz" ;;
    U) say D "$tok" $fin $fin ;;
    H) [ -n "$part" ] && [ "$2" -le "$sz" ] 2>/dev/null || { bad; continue; }
       set -- $(head -c "$2" "$part" | sha256sum); say H "$tok" "$1" "$1" ;;
    T) [ -n "$part" ] && rm -f "$part"; sz=0; say S "$tok" 0 0 ;;
    E) [ $# -eq 3 ] && finish "$@" || bad ;;
    X) run "$@" ;;
    W) rc=-; [ "$(cat run.id 2>/dev/null)" = "$2" ] && rc=$(cat run.rc 2>/dev/null || echo -)
       say Y "$2" "$rc" "$rc" ;;
    G) [ $# -eq 2 ] && get "$@" || bad ;;
    Q) break ;;
    *) bad ;;
  esac
done
stty "$saved" 2>/dev/null || stty sane
say Q bye bye
