#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ with the protocol test vectors (tests/vectors/, hex after the
# header's blank line), valid and malformed alike. See docs/testing.md#fuzzing.
set -euo pipefail
cd "$(dirname "$0")"
for f in ../tests/vectors/*; do
  [ -f "$f" ] || continue
  kind=$(sed -n 's/^kind: //p' "$f" | head -1)
  case "$kind" in
    revocation-list) target=revocations ;;
    "") continue ;;
    *) target=${kind//-/_} ;;
  esac
  mkdir -p "corpus/$target"
  sed '1,/^$/d' "$f" | tr -d ' \n' | xxd -r -p > "corpus/$target/$(basename "$f")"
  code=$(sed -n 's/^code: //p' "$f" | head -1)
  if [ -n "$code" ]; then
    mkdir -p corpus/request_code
    printf '%s' "$code" > "corpus/request_code/$(basename "$f")"
  fi
done
mkdir -p corpus/scenario
cp ../scenarios/*.toml corpus/scenario/
ls corpus | while read -r t; do echo "$t: $(ls "corpus/$t" | wc -l) seeds"; done
