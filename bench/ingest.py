"""stub"""

NAME = "ingest"


def run(opts, workdir, result):
    from bench.common import Skip

    raise Skip("not written yet")
