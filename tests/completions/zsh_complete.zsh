# Drives zsh's completion system the way a user does, for tests/manpage_test.cc:
#   zsh -f zsh_complete.zsh COMPLETIONS_DIR 'grey-gpu-opt plan --'
# starts an interactive zsh on a pseudo-terminal (zsh/zpty) with COMPLETIONS_DIR first on
# $fpath, types the words and a Tab, then kills the line and prints a marker. Everything the
# terminal showed up to the marker (the completed line or the list of matches) goes to stdout.
# Reading stops at the marker itself, not after a delay; the caller's deadline bounds a hang.
# Exit 3: no zsh/zpty module; 4: no pseudo-terminal.
zmodload zsh/zpty || exit 3
zpty z zsh -f -i || exit 4  # no pseudo-terminal here
zpty -w z "PS1='ZP%# '; fpath=(${(q)1} \$fpath); autoload -Uz compinit; compinit -u -D;" \
  "COLUMNS=250; LISTMAX=0; unsetopt beep; print -r -- READY\$((40+2))"
# Type only once the line editor waits at the new prompt: typeahead sent while zsh still
# starts up can be dropped when the line editor sets up the terminal.
local out
zpty -r z out '*READY42*ZP[%#] '
zpty -w -n z "$2"$'\t'
# The typed line shows XEND$((40+2)); only the command's own output shows XEND42.
zpty -w z $'\x15print -r -- XEND$((40+2))'
zpty -r z out '*XEND42*'
zpty -d z
print -r -- "$out"
