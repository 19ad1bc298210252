"""Shared by tests/test_work_pool.py and bench/rate_share_bench.py: how many events (requests,
tokens) came within the busiest second."""


def most_in_one_second(times: list[float]) -> int:
    """The most of ``times`` (seconds) that fall within any one second."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most
