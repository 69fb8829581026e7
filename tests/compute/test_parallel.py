"""minga.compute.parallel: the same kernels on the Numba path and on the plain-Python fallback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from minga.compute import parallel
from minga.compute.parallel import Kernel, kernel, prange
from minga.errors import ComputeError, UsageError

# NumPy comes with minga[parallel]: `make test` installs it, a bare install skips this module
np = pytest.importorskip("numpy")


def _sum_of_squares(xs: Any) -> Any:
    total = 0
    for i in prange(xs.shape[0]):
        total += xs[i] * xs[i]
    return total


def _saxpy(a: Any, xs: Any, ys: Any, out: Any) -> Any:
    for i in prange(xs.shape[0]):
        out[i] = a * xs[i] + ys[i]
    return out


def _histogram_rows(keys: Any, bins: int) -> Any:
    # each iteration owns one output row: independent, so safe in parallel
    out = np.zeros((keys.shape[0], bins), dtype=np.int64)
    for r in prange(keys.shape[0]):
        for c in range(keys.shape[1]):
            out[r, keys[r, c] % bins] += 1
    return out


def _collatz_max_steps(start: int, stop: int) -> Any:
    # a max-reduction over an index range that does not start at zero
    best = 0
    for n in prange(start, stop):
        x = n
        steps = 0
        while x != 1:
            x = x // 2 if x % 2 == 0 else 3 * x + 1
            steps += 1
        best = max(best, steps)
    return best


CASES: list[tuple[Callable[..., Any], Callable[[], tuple[Any, ...]]]] = [
    (_sum_of_squares, lambda: (np.arange(100_001, dtype=np.int64),)),
    (
        _saxpy,
        lambda: (
            3,
            np.arange(50_000, dtype=np.int64),
            np.arange(50_000, dtype=np.int64)[::-1].copy(),
            np.zeros(50_000, dtype=np.int64),
        ),
    ),
    (_histogram_rows, lambda: (np.random.default_rng(7).integers(0, 1000, (300, 40)), 16)),
    (_collatz_max_steps, lambda: (1, 20_000)),
]


@pytest.fixture(scope="module")
def numba_kernels() -> dict[str, Kernel[..., Any]]:
    # compiled once for the module: each Numba compile costs about a second
    return {fn.__name__: kernel(backend="numba")(fn) for fn, _ in CASES}


@pytest.mark.parametrize(("fn", "make_args"), CASES, ids=[fn.__name__ for fn, _ in CASES])
def test_numba_and_python_paths_agree(
    fn: Callable[..., Any], make_args: Callable[[], tuple[Any, ...]], numba_kernels: dict[str, Kernel[..., Any]]
) -> None:
    fallback = kernel(backend="python")(fn)
    compiled = numba_kernels[fn.__name__]
    assert fallback.backend == "python" and compiled.backend == "numba"
    expected = fallback(*make_args())
    got = compiled(*make_args())
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    assert compiled.signatures, "the numba path must really have compiled the kernel"
    assert fallback.signatures == []


def test_known_values() -> None:
    # the fallback is plain Python: check it against arithmetic done by hand
    f = kernel(backend="python")(_sum_of_squares)
    assert f(np.arange(4)) == 0 + 1 + 4 + 9
    assert kernel(backend="python")(_collatz_max_steps)(1, 10) == 19  # 9 takes 19 steps


def test_bare_decorator_picks_numba_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(parallel.BACKEND_ENV, raising=False)
    k = kernel(_sum_of_squares)
    assert k.backend == ("numba" if parallel.numba_available() else "python")
    assert k.py_func is _sum_of_squares
    assert k.__name__ == "_sum_of_squares"


def test_environment_forces_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parallel.BACKEND_ENV, "python")
    assert kernel(_saxpy).backend == "python"
    monkeypatch.setenv(parallel.BACKEND_ENV, "cuda")
    with pytest.raises(UsageError, match="MINGA_PARALLEL_BACKEND"):
        kernel(_saxpy)


def test_a_kernel_numba_cannot_type_is_one_compute_error() -> None:
    def bad(xs: Any) -> Any:
        total = 0
        for i in prange(len(xs)):
            total += xs[i]
        return total

    k = kernel(backend="numba")(bad)
    with pytest.raises(ComputeError, match="could not be compiled by Numba"):
        k({"a": 1})  # a dict of str is not a type Numba compiles
    assert kernel(backend="python")(bad)([1, 2, 3]) == 6


def test_without_numba_installed_the_fallback_runs() -> None:
    # A fresh interpreter where `import numba` fails, as on a machine without the extra.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["numba"] = None  # makes `import numba` raise ImportError
        from minga.compute import parallel
        from minga.compute.parallel import kernel, prange
        assert not parallel.numba_available()
        assert prange is range
        @kernel
        def tri(n):
            total = 0
            for i in prange(n):
                total += i
            return total
        assert tri.backend == "python", tri.backend
        print(tri(1001))
        try:
            kernel(backend="numba")(tri.py_func)
        except Exception as exc:
            print(type(exc).__name__)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(sum(range(1001))), "UsageError"]


def test_typing_does_not_depend_on_numba_being_installed() -> None:
    # mypy strict over the module with no installed package in sight, as on a machine without
    # minga[parallel]: the optional import must type-check the same way as with Numba present
    root = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml"), "--no-site-packages",
            "--follow-imports=skip", "--no-incremental", str(root / "src" / "minga" / "compute" / "parallel.py")]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=root)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
