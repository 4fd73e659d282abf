"""The example a new session starts from, so a first-time user (and the browser test) can press
one button and see the whole loop: a plain Python loop, a realistic workload, two tests."""

BASELINE = '''def sum_of_squares(numbers):
    """Sum of the squares of a list of integers."""
    total = 0
    for x in numbers:
        total = total + x * x
    return total
'''

ENTRY = "sum_of_squares"

WORKLOAD = '''import random


def cases():
    """Calls to time: each yields the positional arguments of one call."""
    rng = random.Random(0)
    for size in (1_000, 10_000, 50_000):
        yield ([rng.randint(-1000, 1000) for _ in range(size)],)
'''

TESTS = """from target import sum_of_squares


def test_small():
    assert sum_of_squares([1, 2, 3]) == 14


def test_empty_and_negative():
    assert sum_of_squares([]) == 0
    assert sum_of_squares([-2, 2]) == 8
"""

TITLE = "Sum of squares"
