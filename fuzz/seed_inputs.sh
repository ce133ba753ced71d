# Sourced by scripts/test.sh and bench/fuzz_bench.sh (bash). From the repository root:
#   fuzz_seed_list <target> <list-file>
# writes the target's seed files of fuzz/seeds.txt, comma-separated, to <list-file> for
# libFuzzer's -seed_inputs=@<list-file>, and prints how many there are. The seeds are read, never
# written: libFuzzer adds what it finds to the first corpus directory only.
fuzz_seed_list() {
  local target=$1 list=$2 line spec path f
  local -a files=()
  line=$(grep -E "^${target}:" fuzz/seeds.txt || true)
  if [[ -n "$line" ]]; then
    shopt -s nullglob
    # shellcheck disable=SC2206  # the globs are meant to expand
    local -a specs=(${line#*:})
    shopt -u nullglob
    for spec in "${specs[@]}"; do
      for path in $spec; do
        if [[ -d "$path" ]]; then
          while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$path" -type f -print0 | sort -z)
        elif [[ -f "$path" ]]; then
          files+=("$path")
        fi
      done
    done
  fi
  local -a kept=()
  for f in "${files[@]}"; do
    # The list is comma-separated: a name with a comma cannot be passed (none has one today).
    [[ "$f" == *,* ]] || kept+=("$f")
  done
  (IFS=,; printf '%s' "${kept[*]}") >"$list"
  echo "${#kept[@]}"
}
