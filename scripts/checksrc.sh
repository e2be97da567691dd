#!/usr/bin/env bash
# Rejects what the house style bans in the project's C sources (STYLE.md section 7): unbounded
# string functions, gmtime/localtime (time zones go through ICU), system(), atoi, raw malloc/free
# outside common/src/mem.c, and the synchronous network calls banned on the event loop.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
status=0
files=$(git ls-files --cached --others --exclude-standard 'common/*.c' 'common/*.h' 'gateway/*.c' 'gateway/*.h' 'billing/*.c' \
          'billing/*.h' 'lpr-bridge/*.c' 'lpr-bridge/*.h' 'parkctl/*.c' 2>/dev/null || true)
[ -n "$files" ] || files=$(find common gateway billing lpr-bridge parkctl -name '*.[ch]' 2>/dev/null)
check() {
  local pattern=$1 why=$2; shift 2
  local hits
  hits=$(grep -nE "$pattern" "$@" /dev/null | grep -v 'checksrc: allow' || true)
  if [ -n "$hits" ]; then
    echo "$hits" | sed "s|\$|   <- $why|"
    status=1
  fi
}
# shellcheck disable=SC2086
check '\b(sprintf|vsprintf|strcpy|strcat|strtok|gets|atoi|atol|gmtime|localtime|system|tmpnam)\s*\(' \
  'banned function' $files
mem_files=$(echo $files | tr ' ' '\n' | grep -v '^common/src/mem.c$' || true)
# shellcheck disable=SC2086
[ -z "$mem_files" ] || check '(^|[^_a-z])(malloc|calloc|realloc|free|strdup)\s*\(' \
  'use cmn_x*/cmn_free (cmn/mem.h)' $mem_files
# shellcheck disable=SC2086
check '\b(redisCommand|redisConnect|curl_easy_perform|getaddrinfo|sleep|usleep)\s*\(' \
  'blocks the event loop' $(echo $files | tr ' ' '\n' | grep -v '^parkctl/' || true)
[ $status -eq 0 ] && echo "checksrc: $(echo $files | wc -w) files clean"
exit $status
