"""Time and accuracy of the closed-form ELU NNGP/NTK (elulab.theory.kernels) against peers.

The workload: one hidden layer, ``stax.serial(Dense, ELU, Dense)`` with ``W_std = 1``, no
bias, on 500 inputs of dimension 10 (standard normal from a fixed seed, each row
standardised to mean 0 and variance 1): the 500 x 500 NNGP and NTK matrices, float64,
one thread. Compared with

(a) neural-tangents (``stax.ElementwiseNumerical(jax.nn.elu, deg=25)``: 2-D Gauss-Hermite
    quadrature, the library's method for activations without a closed form). It only
    installs with old pins, so this script builds its own virtual environment (once, under
    ``$ELULAB_BENCH_CACHE`` or ``~/.cache/elulab-bench/nt-venv``: ``jax==0.4.23
    jaxlib==0.4.23 "numpy<2" "scipy<1.13"`` and ``neural-tangents==0.6.5 --no-deps``,
    whose TensorFlow bridge ``neural_tangents.experimental`` is stubbed out since it needs
    TensorFlow and is unused here) and runs a child script there. neural-tangents is never a
    dependency of elulab. If it cannot be installed the script says so, and the same method
    (2-D Gauss-Hermite, 25 nodes per dimension) implemented here in numpy stands in; that
    row is always printed as well.
(b) the closed form in the style of Tsuchida et al. (2021), "Avoiding Kernel Fixed Points"
    (alpha = 1): exponentials times bivariate normal cdfs at shifted means, as written in
    docs/kernels.md, every Phi_2 evaluated with ``scipy.stats.multivariate_normal.cdf``
    (written here from the formula, not from their code). At ~0.1 ms per cdf it is timed on
    a sample of off-diagonal entries and its time is extrapolated to the full matrix
    (labelled so).
(c) 30-digit mpmath references (tests/kernel_reference.py) on a sample of entries
    (diagonal ones included) for the accuracy of every method.

Prints each method's time, its maximum relative error against mpmath, and the ratios
(speed-up = peer time / our time; error ratio = peer error / our error).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_kernels.py [--sample 200] [--no-peer]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mpmath as mp
import numpy as np
from scipy.special import roots_hermite
from scipy.stats import multivariate_normal

from elulab.theory import nngp_and_ntk

__all__ = ["main"]

N, D, SEED = 500, 10, 0
DEG = 25
ROOT = Path(__file__).resolve().parents[1]
PINS = ["jax==0.4.23", "jaxlib==0.4.23", "numpy<2", "scipy<1.13", "ml_dtypes", "opt_einsum"]
PINS += ["frozendict"]  # neural-tangents' one light dependency besides jax
PEER = "neural-tangents==0.6.5"

CHILD = r"""
import json, sys, time, types, warnings
# the TensorFlow bridge needs tensorflow and tf2jax; it is not used here
sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
import numpy as np
import jax
jax.config.update("jax_enable_x64", True)
import neural_tangents as nt
from neural_tangents import stax

x = np.load(sys.argv[1])
deg, repeats = int(sys.argv[3]), int(sys.argv[4])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    _, _, kernel_fn = stax.serial(
        stax.Dense(512, W_std=1.0, b_std=None),
        stax.ElementwiseNumerical(jax.nn.elu, deg=deg),
        stax.Dense(512, W_std=1.0, b_std=None),
    )
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        k = kernel_fn(x, None, ("nngp", "ntk"))
        k.ntk.block_until_ready()
        times.append(time.perf_counter() - t0)
np.savez(sys.argv[2], nngp=np.asarray(k.nngp), ntk=np.asarray(k.ntk))
print(json.dumps({"neural_tangents": nt.__version__, "jax": jax.__version__,
                  "first_s": times[0], "best_s": min(times[1:])}))
"""


def inputs() -> np.ndarray:
    x = np.random.default_rng(SEED).standard_normal((N, D))
    return (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)


def _best(fn, repeats: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


# ---------------------------------------------------------------------------------------
# (a) neural-tangents in its own virtual environment, and the same method in numpy
# ---------------------------------------------------------------------------------------


def _venv_dir() -> Path:
    base = os.environ.get("ELULAB_BENCH_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "elulab-bench") / "nt-venv"


def _peer_python() -> tuple[Path | None, str]:
    venv = _venv_dir()
    py = venv / "bin" / "python"
    marker = venv / ".elulab-ready"
    if marker.exists() and py.exists():
        return py, "reused"
    print(f"building the neural-tangents environment in {venv} (a few minutes) ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(venv)],
        [str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(py), "-m", "pip", "install", "-q", *PINS],
        [str(py), "-m", "pip", "install", "-q", "--no-deps", PEER],
    ]
    for cmd in steps:
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
            return None, f"`{' '.join(cmd[2:5])} ...` failed: {' | '.join(tail)}"
    marker.write_text("ok\n")
    return py, "built"


def run_peer(x: np.ndarray, repeats: int) -> dict | None:
    py, how = _peer_python()
    if py is None:
        print(f"neural-tangents unavailable: {how}")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        xin, out, script = Path(tmp, "x.npy"), Path(tmp, "k.npz"), Path(tmp, "child.py")
        np.save(xin, x)
        script.write_text(CHILD)
        env = dict(os.environ, OMP_NUM_THREADS="1", JAX_PLATFORMS="cpu")
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        cmd = [str(py), str(script), str(xin), str(out), str(DEG), str(repeats)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if res.returncode != 0:
            print(f"neural-tangents run failed: {res.stderr.strip().splitlines()[-1:]}")
            return None
        info = json.loads(res.stdout.strip().splitlines()[-1])
        with np.load(out) as z:
            info["nngp"], info["ntk"] = z["nngp"], z["ntk"]
    info["env"] = how
    return info


def gauss_hermite(x: np.ndarray, deg: int = DEG) -> tuple[np.ndarray, np.ndarray]:
    """neural-tangents' method in numpy: E[g(u) g(v)] by a deg x deg Gauss-Hermite rule."""
    k0 = x @ x.T / x.shape[1]
    d = np.diag(k0)
    s1, s2 = np.sqrt(d)[:, None], np.sqrt(d)[None, :]
    rho = np.clip(k0 / (s1 * s2), -1.0, 1.0)
    r = np.sqrt(1.0 - rho * rho)
    t, w = roots_hermite(deg)
    t, w = t * math.sqrt(2.0), w / math.sqrt(math.pi)  # probabilists' nodes
    iu = np.triu_indices(x.shape[0])
    a, b, c, rr = (np.broadcast_to(m, k0.shape)[iu] for m in (s1, s2, rho, r))
    k = np.zeros(a.size)
    n = np.zeros(a.size)
    for ti, wi in zip(t, w, strict=True):
        u = a * ti
        fu, du = (
            np.where(u > 0, u, np.expm1(np.minimum(u, 0))),
            np.where(u > 0, 1.0, np.exp(np.minimum(u, 0))),
        )
        v = b[:, None] * (c[:, None] * ti + rr[:, None] * t[None, :])
        fv = np.where(v > 0, v, np.expm1(np.minimum(v, 0)))
        dv = np.where(v > 0, 1.0, np.exp(np.minimum(v, 0)))
        k += wi * fu * (fv @ w)
        n += wi * du * (dv @ w)
    kk, nn = np.empty(k0.shape), np.empty(k0.shape)
    kk[iu], nn[iu] = k, n
    kk.T[iu], nn.T[iu] = k, n
    return kk, kk + nn * k0


# ---------------------------------------------------------------------------------------
# (b) the Phi_2 closed form evaluated with scipy's multivariate normal cdf
# ---------------------------------------------------------------------------------------


def _phi2(h: float, k: float, rho: float) -> float:
    return float(multivariate_normal.cdf([h, k], mean=[0.0, 0.0], cov=[[1.0, rho], [rho, 1.0]]))


def scipy_closed_form(s11: float, s12: float, s22: float) -> tuple[float, float]:
    """ELU (alpha = 1) NNGP and NTK steps, the closed form as written, Phi_2 from scipy."""
    s1, s2 = math.sqrt(s11), math.sqrt(s22)
    rho = s12 / (s1 * s2)
    r = math.sqrt(1.0 - rho * rho)
    psi = math.acos(rho)
    p_pp = (math.pi - psi) / (2 * math.pi)
    g_pn = math.exp(s22 / 2) * _phi2(rho * s2, -s2, -rho)
    g_np = math.exp(s11 / 2) * _phi2(-s1, rho * s1, -rho)
    g_10 = math.exp(s11 / 2) * _phi2(-s1, -rho * s1, rho)
    g_01 = math.exp(s22 / 2) * _phi2(-rho * s2, -s2, rho)
    g_11 = math.exp((s11 + 2 * s12 + s22) / 2) * _phi2(-s1 - rho * s2, -rho * s1 - s2, rho)
    phi0 = 1 / math.sqrt(2 * math.pi)
    t_pp = s1 * s2 * (r + rho * (math.pi - psi)) / (2 * math.pi)
    t_pn = s12 * g_pn + 0.5 * s1 * phi0 * (2 * math.exp(s22 * r * r / 2) * _ncdf(-r * s2) - 1)
    t_np = s12 * g_np + 0.5 * s2 * phi0 * (2 * math.exp(s11 * r * r / 2) * _ncdf(-r * s1) - 1)
    t_nn = g_11 - g_10 - g_01 + p_pp
    return t_pp + t_pn + t_np + t_nn, p_pp + g_pn + g_np + g_11


def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


# ---------------------------------------------------------------------------------------
# (c) mpmath references
# ---------------------------------------------------------------------------------------


def mpmath_reference(s11: float, s12: float, s22: float) -> tuple:
    sys.path.insert(0, str(ROOT / "tests"))
    import kernel_reference  # the tests' 30-digit reference

    return kernel_reference.kernels(s11, s12, s22, 1.0)


def _rel(a: float, ref) -> float:
    return float(abs((mp.mpf(float(a)) - ref) / ref))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=200, help="entries checked against mpmath")
    ap.add_argument("--scipy-sample", type=int, default=2000, help="entries timed for (b)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-peer", action="store_true", help="skip neural-tangents")
    args = ap.parse_args(argv)

    x = inputs()
    k0 = x @ x.T / D
    rng = np.random.default_rng(1)
    off = [tuple(p) for p in rng.integers(0, N, size=(4 * args.sample, 2)) if p[0] < p[1]]
    sample = [(i, i) for i in range(0, N, N // 10)] + off[: args.sample - 10]

    t_ours, (k_ours, t_ours_mat) = _best(lambda: nngp_and_ntk(x), args.repeats)
    t_gh, (k_gh, n_gh) = _best(lambda: gauss_hermite(x), 1)
    peer = None if args.no_peer else run_peer(x, args.repeats)

    scipy_pts = off[: args.scipy_sample] if len(off) >= args.scipy_sample else off
    extra = rng.integers(0, N, size=(4 * args.scipy_sample, 2))
    scipy_pts = list(dict.fromkeys(scipy_pts + [tuple(p) for p in extra if p[0] < p[1]]))
    scipy_pts = scipy_pts[: args.scipy_sample]
    t0 = time.perf_counter()
    for i, j in scipy_pts:
        scipy_closed_form(k0[i, i], k0[i, j], k0[j, j])
    t_scipy = (time.perf_counter() - t0) / len(scipy_pts) * (N * (N + 1) / 2)

    # two error measures: relative |e / K| (meaningless near a zero of the kernel, for any
    # method) and scaled |e| / sqrt(K(x, x) K(x', x')) (the kernel's natural size)
    errs: dict[str, list[tuple[float, float]]] = {}
    for i, j in sample:
        with mp.workdps(40):
            kr, nr = mpmath_reference(k0[i, i], k0[i, j], k0[j, j])
            tr = kr + nr * mp.mpf(k0[i, j])
        scale_k = math.sqrt(k_ours[i, i] * k_ours[j, j])
        scale_t = math.sqrt(t_ours_mat[i, i] * t_ours_mat[j, j])
        rows = {
            "elulab": (k_ours[i, j], t_ours_mat[i, j]),
            "gauss-hermite-25 (numpy)": (k_gh[i, j], n_gh[i, j]),
        }
        if peer is not None:
            rows["neural-tangents"] = (peer["nngp"][i, j], peer["ntk"][i, j])
        if i != j:  # scipy's cdf needs a non-singular covariance
            ks, ns = scipy_closed_form(k0[i, i], k0[i, j], k0[j, j])
            rows["Phi2 closed form + scipy mvn cdf"] = (ks, ks + ns * k0[i, j])
        for name, (kv, tv) in rows.items():
            ek, et = _rel(kv, kr), _rel(tv, tr)
            errs.setdefault(name + " nngp", []).append((ek, ek * float(abs(kr)) / scale_k))
            errs.setdefault(name + " ntk", []).append((et, et * float(abs(tr)) / scale_t))

    print(
        f"ELU (alpha=1) one-hidden-layer NNGP + NTK, {N} x {N}, inputs {N} x {D}, float64, 1 thread"
    )
    print(
        f"errors: max over {len(sample)} entries (10 diagonal) against 30-digit mpmath, relative"
        " |e/K| and scaled |e|/sqrt(K(x,x)K(x',x'))"
    )
    times = {
        "elulab": t_ours,
        "gauss-hermite-25 (numpy)": t_gh,
        "Phi2 closed form + scipy mvn cdf": t_scipy,
    }
    notes = {
        "Phi2 closed form + scipy mvn cdf": (
            f"time extrapolated from {len(scipy_pts)} entries; errors off the diagonal only"
        )
    }
    if peer is not None:
        times["neural-tangents"] = peer["best_s"]
        notes["neural-tangents"] = (
            f"neural-tangents {peer['neural_tangents']}, jax {peer['jax']}, deg={DEG}; first "
            f"call (compiling) {peer['first_s']:.2f} s; environment {peer['env']}"
        )

    def worst(name: str, field: str, which: int) -> float:
        return max(e[which] for e in errs[f"{name} {field}"])

    head = ("method", "time s", "nngp rel", "nngp scaled", "ntk rel", "ntk scaled", "speed-up")
    print(
        "{:34s} {:>9s} {:>10s} {:>11s} {:>10s} {:>11s} {:>9s}  error ratio (scaled) nngp, ntk".format(
            *head
        )
    )
    for name, t in times.items():
        vals = [worst(name, f, w) for f in ("nngp", "ntk") for w in (0, 1)]
        ratio_k = vals[1] / worst("elulab", "nngp", 1)
        ratio_t = vals[3] / worst("elulab", "ntk", 1)
        print(
            f"{name:34s} {t:9.3f} {vals[0]:10.2e} {vals[1]:11.2e} {vals[2]:10.2e} {vals[3]:11.2e}"
            f" {t / t_ours:9.2f}  {ratio_k:.2e}, {ratio_t:.2e}"
        )
        if name in notes:
            print(f"{'':36s}({notes[name]})")
    if peer is not None:
        dk = np.max(np.abs(peer["nngp"] - k_ours)) / np.max(np.abs(k_ours))
        dt = np.max(np.abs(peer["ntk"] - t_ours_mat)) / np.max(np.abs(t_ours_mat))
        print(
            f"neural-tangents vs elulab over all {N * N} entries: max |difference| / max |kernel|"
            f" nngp {dk:.2e}, ntk {dt:.2e}"
        )
    print("speed-up = method time / elulab time; error ratio = method error / elulab error")


if __name__ == "__main__":
    main()
