"""stub"""

NAME = "listing"


def run(opts, workdir, result):
    from bench.common import Skip

    raise Skip("not written yet")
