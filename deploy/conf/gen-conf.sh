#!/bin/bash
# gen-conf.sh - write deploy/conf/<daemon>.conf from the daemons' --help and
# --print-config: every key commented out with its default. Run after a
# flag is added or changed: gen-conf.sh BUILD/bin (tests/system/test_config.c
# fails while a key is missing from a file).
set -euo pipefail
bin=${1:?usage: gen-conf.sh BIN_DIR}
here=$(cd "$(dirname "$0")" && pwd)
for daemon in jr-broker jr-worker jr-ingester; do
    out="$here/$daemon.conf"
    {
        echo "# /etc/jobrunner/$daemon.conf - settings of $daemon (docs/operations.md, Configuration)"
        echo "#"
        echo "# One 'name = value' per line; the names are the flags of '$daemon --help'."
        echo "# Blank lines and lines starting with # are ignored, a ' #' after a value"
        echo "# starts a comment; quote a value ('...' or \"...\") to keep spaces or #."
        echo "# Booleans: 1/true/yes/on or 0/false/no/off. An empty value is the default."
        echo "# Precedence: flags > environment > this file > defaults; to see what a"
        echo "# process would use, and from where: $daemon --config FILE --print-config"
        echo "#"
        echo "# Every key is below, commented out, with its default."
        # A clean environment: the defaults, not this shell's settings.
        env -i "$bin/$daemon" --print-config | grep -v '^#' | while IFS= read -r line; do
            key=${line%% =*}
            value=${line#* = }
            value=${value%  # default}
            [[ $line == "$key =  # default" ]] && value=""
            help=$(env -i "$bin/$daemon" --help | sed -n "s/^  --$key\( V\)\? \+//p" \
                   | sed 's/ \[\$.*//')
            echo
            echo "# $help"
            echo "# $key =${value:+ $value}"
        done
    } > "$out.tmp"
    mv "$out.tmp" "$out"
done
