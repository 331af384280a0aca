"""Per-iteration time (and error) of a Burgers PINN: elulab Taylor mode vs autograd vs DeepXDE.

The set-up is DeepXDE's Burgers example: u_t + u u_x = (0.01/pi) u_xx on [-1, 1] x [0, 1],
a 2-20-20-20-1 net (Glorot normal), 2540 domain / 80 boundary / 160 initial points,
Adam (lr 1e-3), float32, one thread. Timed per activation (tanh, ELU):

(a) elulab Taylor mode, eager: :meth:`elulab.pinn.Problem.loss` (one forward pass gives
    u, u_x, u_t, u_xx), one ordinary backward;
(b) the same loss through :func:`elulab.pinn.compile_loss` (``torch.compile``; the
    compile time is reported apart; an eager fallback is said);
(c) plain PyTorch double backward on the same net and points (``autograd.grad`` with
    ``create_graph=True`` for u_x, u_t, then u_xx);
(d) DeepXDE 1.15.0 (``DDE_BACKEND=pytorch``), installed by this script into its own venv
    (under ``$ELULAB_BENCH_CACHE`` or ``~/.cache/elulab-bench/dde-venv``), which reuses
    elulab's torch through a ``.pth`` line so it stays the same CPU build; never a
    dependency of elulab. If it cannot be installed, the script says so.

Each method trains ``--iters`` Adam iterations after ``--warmup`` ones; the time per
iteration is the median of ``--repeats`` blocks, in CPU time of the process
(``time.process_time``, one thread: robust to other load on a shared machine). The relative L2 error against the
shared reference after the same number of iterations is printed beside it. Ratios:
DeepXDE time / ours, ours / double backward, ELU / tanh.

With ``--error-seeds K`` it also trains ``K`` seeds of each (elulab Taylor mode and
DeepXDE, tanh and ELU) for ``--error-iters`` Adam iterations (default 2000), each seed
drawing its own points and initial weights, and prints the relative L2 error with 95%
intervals and Welch's interval of elulab - DeepXDE; ``--error-only`` skips the timings.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_pinn.py [--iters 300] [--no-peer]
[--error-seeds 5 [--error-only]]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import sysconfig
import time
import warnings
from pathlib import Path

import torch

from elulab.data import data_root, load_burgers
from elulab.pinn import MLP, burgers, compile_loss, relative_l2
from elulab.train import fit

__all__ = ["main"]

PEER = "deepxde==1.15.0"
NU = 0.01 / math.pi

# What both DeepXDE children share: DeepXDE's Burgers example and the reference grid.
PEER_SETUP = r"""
import json, os, sys, time
os.environ["DDE_BACKEND"] = "pytorch"
import numpy as np
import torch
torch.set_num_threads(1)
import deepxde as dde


def pde(x, y):
    dy_x = dde.grad.jacobian(y, x, i=0, j=0)
    dy_t = dde.grad.jacobian(y, x, i=0, j=1)
    dy_xx = dde.grad.hessian(y, x, i=0, j=0)
    return dy_t + y * dy_x - 0.01 / np.pi * dy_xx


def burgers_data():
    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1),
                                          dde.geometry.TimeDomain(0, 1))
    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]),
                     lambda _, on_initial: on_initial)
    return dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=2540, num_boundary=80,
                            num_initial=160)


def rel_l2(model, ref):
    z = np.load(ref)
    xx, tt = np.meshgrid(z["x"].ravel(), z["t"].ravel(), indexing="ij")
    X = np.stack([xx.ravel(), tt.ravel()], 1).astype(np.float32)
    u = z["usol"].reshape(-1, 1)
    return float(np.linalg.norm(model.predict(X) - u) / np.linalg.norm(u))


def burgers_model(act):
    net = dde.nn.FNN([2] + [20] * 3 + [1], act, "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    return model
"""

CHILD = (
    PEER_SETUP
    + r"""
act, warm, iters, repeats, ref = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5]
data = burgers_data()
dde.config.set_random_seed(0)
model = burgers_model(act)
model.train(iterations=warm, display_every=10**9, verbose=0)
per = []
for _ in range(repeats):
    t0 = time.process_time()
    model.train(iterations=iters, display_every=10**9, verbose=0)
    per.append((time.process_time() - t0) / iters)
print(json.dumps({"per": per, "err": rel_l2(model, ref), "version": dde.__version__}))
"""
)

ERR_CHILD = (
    PEER_SETUP
    + r"""
act, iters, seeds, ref = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
errs = []
for seed in seeds:
    dde.config.set_random_seed(seed)  # the points and the initial weights
    data = burgers_data()
    model = burgers_model(act)
    model.train(iterations=iters, display_every=10**9, verbose=0)
    errs.append(rel_l2(model, ref))
print(json.dumps({"errs": errs}))
"""
)


def _venv_dir() -> Path:
    base = os.environ.get("ELULAB_BENCH_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "elulab-bench") / "dde-venv"


def _peer_python() -> tuple[Path | None, str]:
    venv = _venv_dir()
    py, marker = venv / "bin" / "python", venv / ".elulab-ready"
    if marker.exists() and py.exists():
        return py, "reused"
    print(f"building the DeepXDE environment in {venv} ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    res = subprocess.run([base, "-m", "venv", str(venv)], capture_output=True, text=True)
    if res.returncode != 0:
        return None, f"venv failed: {res.stderr.strip()[-200:]}"
    # elulab's torch (and numpy, scipy) after the venv's own packages: the same CPU build
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True).stdout.strip()  # fmt: skip
    Path(site, "elulab-torch.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    cmd = [str(py), "-m", "pip", "install", "-q", PEER]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return None, "pip install failed: " + " | ".join(res.stderr.strip().splitlines()[-3:])
    marker.write_text("ok\n")
    return py, "built"


def run_peer(act: str, args: argparse.Namespace, ref: Path) -> dict | None:
    py, how = _peer_python()
    if py is None:
        print(f"DeepXDE unavailable: {how}")
        return None
    env = dict(os.environ, OMP_NUM_THREADS="1", DDE_BACKEND="pytorch")
    cmd = [str(py), "-c", CHILD, act, str(args.warmup), str(args.iters), str(args.repeats)]
    res = subprocess.run([*cmd, str(ref)], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        print(f"DeepXDE run failed: {res.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def peer_errors(act: str, iters: int, seeds: list[int], ref: Path) -> list[float] | None:
    """DeepXDE's relative L2 error after ``iters`` Adam iterations, one per seed."""
    py, how = _peer_python()
    if py is None:
        print(f"DeepXDE unavailable: {how}")
        return None
    env = dict(os.environ, OMP_NUM_THREADS="1", DDE_BACKEND="pytorch")
    cmd = [str(py), "-c", ERR_CHILD, act, str(iters), json.dumps(seeds), str(ref)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        print(f"DeepXDE run failed: {res.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])["errs"]


def our_errors(act: str, iters: int, seeds: list[int], xr, ur) -> list[float]:
    """elulab's (Taylor mode, eager) relative L2 error after ``iters`` Adam iterations,
    one per seed (the seed draws the points and the initial weights)."""
    problem, errs = burgers(), []
    for seed in seeds:
        points = problem.sample(seed, dtype=torch.float32)
        torch.manual_seed(seed)
        net = MLP(2, 1, 20, 3, act)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        fit(net, problem.loss_fn(points), itertools.repeat(None), optimizer=opt, steps=iters)
        with torch.no_grad():
            errs.append(relative_l2(net(xr), ur))
    return errs


def compare_errors(args: argparse.Namespace, xr, ur) -> None:
    """Relative L2 error after the same iterations, over seeds: ours vs DeepXDE, with
    95% t-intervals and Welch's interval of the difference (the two start from
    different draws, so the comparison is between distributions, not paired)."""
    from scipy import stats

    seeds = list(range(args.error_seeds))
    ref = data_root() / "burgers" / "Burgers.npz"
    print(f"\nrelative L2 error after {args.error_iters} Adam iterations (lr 1e-3), "
          f"{len(seeds)} seeds; mean [95% CI]")  # fmt: skip

    def ci(v: list[float]) -> str:
        lo, hi = stats.t.interval(0.95, len(v) - 1, loc=statistics.mean(v), scale=stats.sem(v))
        return f"{statistics.mean(v):.4f} [{lo:.4f}, {hi:.4f}]"

    for act in ("tanh", "elu"):
        ours = our_errors(act, args.error_iters, seeds, xr, ur)
        peer = None if args.no_peer else peer_errors(act, args.error_iters, seeds, ref)
        print(f"  {act:<5} elulab   {ci(ours)}   per seed {', '.join(f'{e:.3f}' for e in ours)}")
        if peer is None:
            continue
        print(f"  {act:<5} DeepXDE  {ci(peer)}   per seed {', '.join(f'{e:.3f}' for e in peer)}")
        d = stats.ttest_ind(ours, peer, equal_var=False)
        lo, hi = d.confidence_interval(0.95)
        word = "better" if hi < 0 else "worse" if lo > 0 else "no difference resolved"
        diff = statistics.mean(ours) - statistics.mean(peer)
        print(f"  {act:<5} elulab - DeepXDE {diff:+.4f} [{lo:+.4f}, {hi:+.4f}]: {word}")


def double_backward_loss(net: MLP, points) -> torch.Tensor:
    """The Burgers loss by nested autograd (what DeepXDE computes, without its caching)."""
    x = points.domain.detach().requires_grad_(True)
    u = net(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (gx,) = torch.autograd.grad(g[:, 0].sum(), x, create_graph=True)
    loss = (g[:, 1] + u[:, 0] * g[:, 0] - NU * gx[:, 0]).square().mean()
    for _, xc, gc, w in points.conditions:
        loss = loss + w * (net(xc) - gc).square().mean()
    return loss


def time_ours(act: str, method: str, args: argparse.Namespace, xr, ur) -> dict:
    problem = burgers()
    points = problem.sample(0, dtype=torch.float32)
    torch.manual_seed(0)
    net = MLP(2, 1, 20, 3, act)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    if method == "double backward":
        loss_fn = lambda: double_backward_loss(net, points)  # noqa: E731
    else:
        fn = compile_loss(problem.loss) if method == "compiled" else problem.loss
        loss_fn = lambda: fn(net, points)[0]  # noqa: E731

    def step() -> None:
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()  # the compile happens here (in worker processes too: wall time)
    first = time.perf_counter() - t0
    for _ in range(args.warmup - 1):
        step()
    per = []
    for _ in range(args.repeats):
        t0 = time.process_time()
        for _ in range(args.iters):
            step()
        per.append((time.process_time() - t0) / args.iters)
    with torch.no_grad():
        err = relative_l2(net(xr), ur)
    out = {"per": per, "err": err, "first": first}
    if method == "compiled":
        out["fallback"] = bool(fn.fallback())
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=300, help="timed iterations per block")
    ap.add_argument("--repeats", type=int, default=3, help="timed blocks (median)")
    ap.add_argument("--warmup", type=int, default=30, help="untimed iterations first")
    ap.add_argument("--no-peer", action="store_true", help="skip DeepXDE")
    ap.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    ap.add_argument(
        "--error-seeds",
        type=int,
        default=0,
        help="also: L2 error after --error-iters iterations over this many seeds",
    )
    ap.add_argument("--error-iters", type=int, default=2000)
    ap.add_argument("--error-only", action="store_true", help="skip the timings")
    args = ap.parse_args(argv)
    if (args.error_only or args.error_seeds) and args.error_seeds < 2:
        ap.error("--error-seeds needs N >= 2 seeds (a confidence interval); 0 is off")
    torch.set_num_threads(1)
    ref_np = load_burgers()
    xr, ur = (torch.from_numpy(a).float() for a in ref_np.points())
    if args.error_seeds:
        compare_errors(args, xr, ur)
        if args.error_only:
            return
    methods = ["taylor (eager)", *(["compiled"] * (not args.no_compile)), "double backward"]
    rows: dict[tuple[str, str], dict] = {}
    for act in ("tanh", "elu"):
        for m in methods:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit, inside inductor
                rows[(m, act)] = time_ours(act, m, args, xr, ur)
        if not args.no_peer:
            got = run_peer(act, args, data_root() / "burgers" / "Burgers.npz")
            if got is not None:
                rows[("DeepXDE 1.15.0", act)] = got
    n = args.warmup + args.iters * args.repeats
    print(f"\nBurgers, 2-20-20-20-1, 2540/80/160 points, Adam, float32, 1 thread; "
          f"median of {args.repeats} x {args.iters} iterations; L2 error after {n}")  # fmt: skip
    print(f"{'method':<18}{'act':<6}{'ms/iter':>9}{'rel L2':>10}  note")
    med = {k: statistics.median(v["per"]) * 1e3 for k, v in rows.items()}
    for (m, act), v in rows.items():
        note = f"first step {v['first']:.1f} s" if "first" in v else ""
        note += " (eager fallback)" * bool(v.get("fallback"))
        print(f"{m:<18}{act:<6}{med[(m, act)]:>9.3f}{v['err']:>10.3g}  {note}")
    print("\nratios (time per iteration)")
    for act in ("tanh", "elu"):
        for m in methods[:-1]:
            for other in ("double backward", "DeepXDE 1.15.0"):
                if (other, act) in med:
                    r = med[(other, act)] / med[(m, act)]
                    print(f"  {act}: {other} / {m} = {r:.2f}x")
    for m in [*methods, "DeepXDE 1.15.0"]:
        if (m, "tanh") in med and (m, "elu") in med:
            print(f"  {m}: ELU / tanh = {med[(m, 'elu')] / med[(m, 'tanh')]:.2f}")


if __name__ == "__main__":
    main()
