# fish completion for grey-gpu-opt(1).
# Install as /usr/share/fish/vendor_completions.d/grey-gpu-opt.fish.
# Kept in step with `grey-gpu-opt --help` by tests/manpage_test.cc: a command's options are the
# lines with `__fish_seen_subcommand_from COMMAND`.

set -l __grey_commands detect capture plan apply env run restore start-daemon status report labels

# No file names unless an option or command asks for them.
complete -c grey-gpu-opt -f

# Commands.
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a detect -d 'Find every GPU and print one normalized spec each'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a capture -d "Save every source's output and the sysfs files read into DIR"
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a plan -d 'Per-GPU safe or aggressive settings, each explained'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a apply -d 'Apply the plan (dry run by default)'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a env -d 'Print the applied environment for eval'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a run -d 'Run CMD with the applied environment and a GPU from the placement policy'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a restore -d 'Undo journaled device changes newest first'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a start-daemon -d 'Monitor and govern the GPUs in the foreground'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a status -d 'Is a daemon running? Last tick, governor state per GPU'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a report -d 'Render the artifacts into artifacts/report.html'
complete -c grey-gpu-opt -n "not __fish_seen_subcommand_from $__grey_commands" -a labels -d 'Write the Node Feature Discovery feature file'

# Global options (before or after the command).
complete -c grey-gpu-opt -s h -l help -d 'Print help and exit'
complete -c grey-gpu-opt -l version -d 'Print the version and exit'
complete -c grey-gpu-opt -l timeout -x -d 'Deadline for each source, in seconds (default 5)'
complete -c grey-gpu-opt -l sysfs-root -x -a '(__fish_complete_directories)' -d "Where the host's /sys is mounted"
complete -c grey-gpu-opt -l procfs-root -x -a '(__fish_complete_directories)' -d "Where the host's /proc is mounted"
complete -c grey-gpu-opt -l pod-log-root -x -a '(__fish_complete_directories)' -d "The kubelet's pod log directory"
complete -c grey-gpu-opt -s v -l verbose -d 'Show sources and timings on stderr'

# detect
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from detect' -l json -d 'Print a JSON array, one object per GPU'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from detect' -l explain -d 'Explain every source and the devices ignored'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from detect' -l replay -x -a '(__fish_complete_directories)' -d 'Detect from a capture directory'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from detect' -l no-save -d 'Do not write last_gpu_spec.json'

# capture DIR
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from capture' -x -a '(__fish_complete_directories)'

# plan
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from plan' -l mode -x -a 'safe aggressive' -d 'Planning mode'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from plan' -l output -r -F -d 'Also write the plan to FILE (.yaml, .yml or .json)'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from plan' -l config -r -F -d 'Overrides applied on top of config.yaml'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from plan' -l json -d 'Print the plan as JSON'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from plan' -l detect -d 'Detect again instead of using the saved spec'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from plan' -l explain -d 'Also list every field with its confidence, source and rationale'

# apply
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from apply' -l dry-run -d 'List every action, change nothing (default)'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from apply' -l no-dry-run -d 'Really apply'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from apply' -l destructive -d 'Also change device settings: persistence mode, power limits'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from apply' -l yes -d 'Consent to --destructive without the typed confirmation'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from apply' -l json -d 'Print the ApplyResult as JSON'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from apply' -l plan -r -F -d 'Plan file to apply (default last_plan.yaml)'

# env
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from env' -l shell -x -a 'sh fish json' -d 'Output form'

# run [--gpu N|auto] [--enforce-cap] -- CMD ARGS...
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from run' -l gpu -x -a auto -d 'GPU index, or auto (least loaded by free VRAM)'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from run' -l enforce-cap -d "Hold a CUDA program under the plan's per-process VRAM cap"
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from run; and contains -- -- (commandline -opc)' -x -a '(__fish_complete_command)'

# restore
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from restore' -l dry-run -d 'Show what would be undone'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from restore' -l json -d 'Print the outcome as JSON'

# start-daemon
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from start-daemon' -l interval -x -d 'Seconds between ticks (default 1)'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from start-daemon' -l dry-run -d 'Never change a device setting (default)'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from start-daemon' -l no-dry-run -d 'Allow device changes'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from start-daemon' -l consent -d 'Consent to lowering power limits while cooling'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from start-daemon' -l metrics-listen -d 'Serve Prometheus /metrics (default 127.0.0.1:9862)'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from start-daemon' -l labels-dir -x -a '(__fish_complete_directories)' -d 'Keep the NFD feature file in DIR current'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from start-daemon' -l labels-prefix -x -d 'Label prefix of that file (default grey-gpu-opt)'

# status
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from status' -l json -d 'Print the status as JSON'

# labels
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from labels' -l output-dir -x -a '(__fish_complete_directories)' -d 'Features directory'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from labels' -l prefix -x -d 'Label prefix (default grey-gpu-opt)'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from labels' -l stdout -d 'Print the file instead of writing it'
complete -c grey-gpu-opt -n '__fish_seen_subcommand_from labels' -l replay -x -a '(__fish_complete_directories)' -d 'Detect from a capture directory'
