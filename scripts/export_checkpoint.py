#!/usr/bin/env python3
"""Same as `vocab-extend export-checkpoint`; run with --help for the options."""

from vocab_extend.cli import script_main

if __name__ == "__main__":
    script_main("export-checkpoint")
