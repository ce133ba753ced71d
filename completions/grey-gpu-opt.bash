# bash completion for grey-gpu-opt(1).
# Install as /usr/share/bash-completion/completions/grey-gpu-opt, or source it from ~/.bashrc.
# Kept in step with `grey-gpu-opt --help` by tests/manpage_test.cc.

_grey_gpu_opt() {
  local cur prev
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  COMPREPLY=()
  # --mode=VALUE: bash splits it at "=" into "--mode" "=" "VALUE".
  if [[ $cur == "=" ]]; then
    cur=""
  elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
    prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi

  local commands="detect capture plan apply env run restore start-daemon status report labels"
  local global_opts="-h --help --version --timeout --sysfs-root --procfs-root --pod-log-root
    -v --verbose"

  # The command: the first word that is neither an option nor the value of a global option.
  local i w cmd="" cmd_at=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --) break ;;
      --timeout | --sysfs-root | --procfs-root | --pod-log-root)
        # The value: the next word, or the one after "=" (--timeout=3).
        if [[ ${COMP_WORDS[i + 1]} == "=" ]]; then ((i += 2)); else ((i++)); fi
        ;;
      -*) ;;
      *)
        cmd=$w
        cmd_at=$i
        break
        ;;
    esac
  done

  # run: everything after `--` is the command to run.
  if [[ $cmd == run ]]; then
    for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
      if [[ ${COMP_WORDS[i]} == -- ]]; then
        if ((i + 1 == COMP_CWORD)); then
          mapfile -t COMPREPLY < <(compgen -c -- "$cur" | sort -u)
        else
          compopt -o default 2>/dev/null
        fi
        return 0
      fi
    done
  fi

  # The value of the option before the cursor.
  case $prev in
    --timeout | --interval | --prefix | --labels-prefix)
      return 0
      ;;
    --sysfs-root | --procfs-root | --pod-log-root | --replay | --output-dir | --labels-dir)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -d -- "$cur")
      return 0
      ;;
    --output | --config | --plan)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return 0
      ;;
    --mode)
      [[ $cmd == plan ]] && mapfile -t COMPREPLY < <(compgen -W "safe aggressive" -- "$cur")
      return 0
      ;;
    --shell)
      [[ $cmd == env ]] && mapfile -t COMPREPLY < <(compgen -W "sh fish json" -- "$cur")
      return 0
      ;;
    --gpu)
      [[ $cmd == run ]] && mapfile -t COMPREPLY < <(compgen -W "auto 0 1 2 3 4 5 6 7" -- "$cur")
      return 0
      ;;
  esac

  local opts
  case $cmd in
    "")
      if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$global_opts" -- "$cur")
      else
        mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
      fi
      return 0
      ;;
    detect) opts="--json --explain --replay --no-save" ;;
    capture)
      if [[ $cur != -* ]]; then
        compopt -o filenames 2>/dev/null
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        return 0
      fi
      opts=""
      ;;
    plan) opts="--mode --output --config --json --explain --detect" ;;
    apply) opts="--dry-run --no-dry-run --destructive --yes --json --plan" ;;
    env) opts="--shell" ;;
    run) opts="--gpu --enforce-cap --" ;;
    restore) opts="--dry-run --json" ;;
    start-daemon) opts="--interval --dry-run --no-dry-run --consent --metrics-listen --labels-dir
      --labels-prefix" ;;
    status) opts="--json" ;;
    report) opts="" ;;
    labels) opts="--output-dir --prefix --stdout --replay" ;;
    *) return 0 ;;
  esac
  if [[ $cur == -* ]]; then
    # The command's own options first; the global ones are accepted after the command too.
    mapfile -t COMPREPLY < <(compgen -W "$opts $global_opts" -- "$cur")
  fi
  return 0
}

complete -F _grey_gpu_opt grey-gpu-opt
