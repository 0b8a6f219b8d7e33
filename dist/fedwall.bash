# bash completion for fedwall(8)                             -*- shell-script -*-
# Subcommands, each one's options, .yaml/.yml files after -f/--file,
# directories after --state-dir, the output format after --format.

_fedwall()
{
	local cur prev words cword
	_init_completion -s 2>/dev/null || {
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	}

	local cmds="check generate plan apply confirm status explain flush refresh daemon"
	if [[ $cword -eq 1 ]]; then
		COMPREPLY=($(compgen -W "$cmds --help --version" -- "$cur"))
		return
	fi

	case $prev in
	-f | --file)
		COMPREPLY=($(compgen -f -X '!*.yaml' -- "$cur") $(compgen -f -X '!*.yml' -- "$cur")
			$(compgen -d -S / -- "$cur"))
		compopt -o filenames -o nospace 2>/dev/null
		[[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} != */ ]] && compopt +o nospace 2>/dev/null
		return
		;;
	--state-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		compopt -o filenames 2>/dev/null
		return
		;;
	-o | --output | --metrics)
		COMPREPLY=($(compgen -f -- "$cur"))
		compopt -o filenames 2>/dev/null
		return
		;;
	--format)
		COMPREPLY=($(compgen -W "text json prometheus" -- "$cur"))
		return
		;;
	--table | --confirm)
		return
		;;
	esac

	local opts
	case ${words[1]} in
	check) opts="-f --file -v --verbose --state-dir" ;;
	generate) opts="-f --file -o --output --state-dir --resolve" ;;
	plan) opts="-f --file --json -v --verbose --state-dir --resolve" ;;
	apply) opts="-f --file -v --verbose --state-dir --resolve --confirm --allow-missing-interfaces" ;;
	confirm) opts="--state-dir" ;;
	status) opts="-f --file --table --json --format -o --output --state-dir" ;;
	explain) opts="-f --file --state-dir --live --json" ;;
	flush) opts="-f --file --table -v --verbose --state-dir" ;;
	refresh) opts="-f --file --force -v --verbose --state-dir --metrics --allow-missing-interfaces" ;;
	daemon) opts="-f --file -d --foreground -v --verbose --state-dir --metrics --allow-missing-interfaces" ;;
	*) return ;;
	esac
	COMPREPLY=($(compgen -W "$opts -h --help" -- "$cur"))
} &&
	complete -F _fedwall fedwall

# ex: filetype=sh
