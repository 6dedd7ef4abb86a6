"""The `lorebase` command line. Command modules import only argparse at load; work is imported when run."""
