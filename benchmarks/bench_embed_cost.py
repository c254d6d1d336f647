"""Each embedding method's cost for one task against its floor: the forward and backward passes it cannot avoid.

    python benchmarks/bench_embed_cost.py [configs/packaged.yaml] [--results results] [--tasks emoji-animals-nature]
        [--methods domain task2vec task2vec_mc pseudotask ttk] [--rounds 3] [--threads 1] [--no-breakdown]
        [--save DIR | --compare DIR]

Run it from the study's working directory. A task and the probe checkpoints are read from the run's results folder
(``--results``: results/tasks/{task}.h5, results/probe/probe.pt and random.pt) as the embed stage reads them; what is
not there is made in a temporary folder by the stages that make it (the task from the prepared data the config's
paths name, the probe from its weights in TORCH_HOME).

Timed, side by side in interleaved rounds (medians over ``--rounds``, after one warm-up): the call
``taskspace.stages.embed_tasks`` makes for each (method, task) (the method's ``embed`` on a network rebuilt from the
probe checkpoint, the task's training images, its labels when the method reads them, the probe's normalisation,
the job's device and the seed of the pair), and its floor, on the same network, samples, batch size, resolution
and thread count (the embed stage's, one thread, by default):

- domain: one forward pass of the probe's feature extractor over the task's training images;
- task2vec (variational): one forward pass over its samples (the features its head is fitted on), one training
  pass (forward + backward with weight gradients, eval-mode BatchNorm) when it starts from a Monte-Carlo estimate
  (``init: monte_carlo``), and one training pass per epoch it fits (``epochs``, raised to reach ``min_steps``);
- task2vec_mc: one forward pass over its samples and one training pass per label draw (per-sample gradients' floor);
- pseudotask: one forward pass of the probe with its source classifier over its samples (soft labels and
  features), the head's steps on those features (a linear layer), a training pass for its Monte-Carlo start, and
  per epoch augmented views, the probe's forward pass on them (their soft labels) and a training pass;
- ttk: per random network, a forward pass of each of its batches (train-mode BatchNorm) and the backward pass to
  the parameters of the last block, the only ones it differentiates.

Times are this process's CPU seconds (on one thread they do not grow when other jobs load the machine; the
wall-clock ratio is printed beside). Prints each method's median, its floor's and their ratio, and then, from one
more instrumented call per method, where its time goes: its phases (timed by wrapping the functions it calls) and the
operators that take it (torch.profiler, self CPU time; "perturbation" is the variational estimator's local
reparametrisation, forward and backward).
``--save DIR`` writes every embedding of the warm-up calls to DIR; ``--compare DIR`` checks them, array by array,
against those saved there (np.array_equal): a speed-up must leave every embedding bit-identical.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import taskspace  # noqa: E402  (pins the numeric kernels before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from taskspace.device import prepare_device  # noqa: E402
from taskspace.embeddings import get_method  # noqa: E402
from taskspace.models import split_features  # noqa: E402
from taskspace.plan import RunPlan, effective_config, load_config_files  # noqa: E402
from taskspace.results import Layout, load_checkpoint, read_task  # noqa: E402
from taskspace.sampling import balanced_sample  # noqa: E402
from taskspace.seeding import stable_seed  # noqa: E402
from taskspace.training import augment, network_from_checkpoint, to_tensor  # noqa: E402

DEFAULT_METHODS = ["domain", "task2vec", "task2vec_mc", "pseudotask", "ttk"]
# autograd nodes of the variational estimator's local reparametrisation (receptive-field norms, added noise)
PERTURBATION_BACKWARD = {"_AddNoiseBackward", "_SumOfSquaresBackward", "AvgPool2DBackward0", "SqrtBackward0",
                         "ClampMinBackward0"}
# profiler ranges opened by the instrumented call: operators inside one are filed under it
RANGES = {"perturbation": "perturbation, forward", "per-sample squared norms": "per-sample squared norms"}


# ---------------------------------------------------------------- inputs


def run_plan(config: dict) -> RunPlan:
    """The run's plan (its tasks, the params of its rules); the data's planning warnings are the split stage's."""
    from taskspace import __version__

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return RunPlan(config, __version__)


def task_inputs(config: dict, results: Path, task: str, scratch: Path) -> tuple[str, dict[str, str]]:
    """The task file and the probe checkpoints (pretrained, random and the named ones) of ``task``: the run's own under ``results``,
    else made under ``scratch`` by the stages that make them, with the params their rules pass."""
    from taskspace.stages import import_probe, init_random_probe, split_task

    layout, plan = Layout(str(results)), run_plan(config)
    task_file = layout.task(task)
    if not Path(task_file).is_file():
        task_file = str(scratch / f"{task}.h5")
        print(f"{layout.task(task)} not found: splitting {task} from the prepared data", flush=True)
        split_task(plan.params("split_task", {"task": task})["data"], task, task_file)
    probes = {kind: layout.probe(kind) for kind in ("pretrained", "random")}
    if not Path(probes["pretrained"]).is_file():
        p = plan.params("import_probe")
        probes["pretrained"] = str(scratch / "probe.pt")
        print(f"{layout.probe()} not found: importing the probe's weights", flush=True)
        import_probe(p["probe"], p["resolution"], p["seed"], probes["pretrained"], p["classes"])
    if not Path(probes["random"]).is_file():
        probes["random"] = str(scratch / "random.pt")
        init_random_probe(probes["pretrained"], plan.params("init_random_probe")["seed"], probes["random"])
    for name in plan.named_probes:  # embeddings.probes: imported as import_named_probe does
        probes[name] = layout.probe(name)
        if not Path(probes[name]).is_file():
            p = plan.params("import_named_probe", {"probe": name})
            probes[name] = str(scratch / f"{name}.pt")
            print(f"{layout.probe(name)} not found: importing probe {name}'s weights", flush=True)
            import_probe(p["probe"], p["resolution"], p["seed"], probes[name], p["classes"])
    return task_file, probes


# ---------------------------------------------------------------- floors


def forward_pass(module: nn.Module, x: torch.Tensor, bs: int, device) -> None:
    """``module`` (eval mode, no gradients) over ``x`` in batches of ``bs``."""
    module.eval()
    with torch.no_grad():
        for i in range(0, len(x), bs):
            module(x[i : i + bs].to(device))


def training_pass(body: nn.Module, head: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int, device) -> None:
    """One epoch of forward + backward with weight gradients (eval-mode BatchNorm), cross-entropy against ``y``
    (class ids or soft labels), in batches of ``bs``; no optimiser step."""
    body.eval()
    head.eval()
    params = [*body.parameters(), *head.parameters()]
    for p in params:
        p.requires_grad_(True)
    for i in range(0, len(x), bs):
        F.cross_entropy(head(body(x[i : i + bs].to(device))), y[i : i + bs].to(device)).backward()
        for p in params:
            p.grad = None


def head_steps(features: torch.Tensor, soft: torch.Tensor, steps: int, bs: int, lr: float) -> None:
    """``steps`` Adam steps of a linear head on cached features (PseudoTask's head epochs)."""
    head = nn.Linear(features.shape[1], soft.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for s in range(steps):
        i = (s * bs) % len(features)
        opt.zero_grad()
        F.cross_entropy(head(features[i : i + bs]), soft[i : i + bs]).backward()
        opt.step()


def fit_epochs(s, n: int) -> int:
    """The epochs a variational fit runs: ``epochs``, raised so that it takes at least ``min_steps`` steps."""
    return max(s.epochs, math.ceil(s.min_steps / math.ceil(n / s.batch_size)))


def floor_of(method, ckpt: dict, images: np.ndarray, labels: np.ndarray | None, device, seed: int
             ) -> tuple[Callable[[], None], str]:
    """(the floor of ``method`` on this task as a callable, what it is made of)."""
    s = method.settings
    name = method.name
    net = network_from_checkpoint(ckpt).to(device)
    norm = ckpt["normalization"]
    if name == "domain":
        x = to_tensor(images, norm)
        return (lambda: forward_pass(net.backbone, x, s.batch_size, device),
                f"forward over {len(x)} images, batch {s.batch_size}")
    if name == "ttk":
        from taskspace.embeddings.ttk import last_block, random_network

        bs = min(len(images), s.batch_size)
        x = to_tensor(images[:bs], norm)
        nets = [random_network(s.arch, 0).to(device).train()]  # one network: all cost the same
        nets[0].requires_grad_(False)
        last_block(nets[0]).requires_grad_(True)  # TTK's gradient is the last block's: backward stops there

        def ttk_floor() -> None:
            for _ in range(s.networks * s.batches):
                nets[0](x.to(device)).sum().backward()
                nets[0].zero_grad(set_to_none=True)

        return ttk_floor, (f"{s.networks} networks x {s.batches} x (forward + backward to the last block of {bs} "
                           f"images), {s.arch}")
    prefix, body, _ = split_features(net, s.skip_layers)
    bs = s.batch_size
    if name in ("task2vec", "task2vec_mc"):
        idx = balanced_sample(labels, s.max_samples, np.random.default_rng(seed))
        x = to_tensor(images[idx], norm)
        y = torch.from_numpy(np.unique(labels, return_inverse=True)[1][idx]).long()
        head = nn.Linear(net.num_features, int(y.max()) + 1).to(device)
        if name == "task2vec_mc":
            passes = s.label_samples
        else:
            passes = fit_epochs(s, len(x)) + (s.init == "monte_carlo")

        def task2vec_floor() -> None:
            forward_pass(nn.Sequential(prefix, body), x, bs, device)
            for _ in range(passes):
                training_pass(body, head, x, y, bs, device)

        return task2vec_floor, f"forward + {passes} x (forward + backward) over {len(x)} samples, batch {bs}"
    if name == "pseudotask":
        order = np.sort(np.random.default_rng(seed).permutation(len(images))[: s.max_samples])
        x = to_tensor(images[order], norm)
        soft = torch.softmax(torch.randn(len(x), net.head.out_features), 1)
        features = torch.randn(len(x), net.num_features)
        epochs = fit_epochs(s, len(x))
        steps_per_epoch = math.ceil(len(x) / s.head_batch_size)
        head_epochs = max(s.head_epochs, math.ceil(s.head_min_steps / steps_per_epoch))
        generator = torch.Generator().manual_seed(seed)
        crop, hflip = s.augment["crop_padding"], s.augment["hflip"]

        def pseudotask_floor() -> None:
            forward_pass(net, x, bs, device)
            head_steps(features, soft, head_epochs * steps_per_epoch, s.head_batch_size, s.head_lr)
            if s.init == "monte_carlo":
                training_pass(body, net.head, x, soft, bs, device)
            for _ in range(epochs):
                v = augment(x, crop, hflip, generator)
                forward_pass(net, v, bs, device)
                training_pass(body, net.head, v, soft, bs, device)

        start = " + 1 x (forward + backward)" if s.init == "monte_carlo" else ""
        return pseudotask_floor, (f"forward + {head_epochs} head epochs{start} + {epochs} x (augment + forward + "
                                  f"forward + backward) over {len(x)} samples, batch {bs}")
    raise SystemExit(f"no floor defined for method {name!r}")


# ---------------------------------------------------------------- where the time goes


class PhaseTimer:
    """Wall time of wrapped functions, nested: each call is filed under the phases open when it starts."""

    def __init__(self):
        self.stack: list[str] = []
        self.totals: dict[tuple[str, ...], float] = defaultdict(float)
        self.order: dict[tuple[str, ...], int] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.stack.append(name)
        self.order.setdefault(tuple(self.stack), len(self.order))
        start = time.process_time()
        try:
            yield
        finally:
            self.totals[tuple(self.stack)] += time.process_time() - start
            self.stack.pop()

    def wrap(self, fn: Callable, name: str, generator: bool = False) -> Callable:
        def wrapped(*args, **kwargs):
            with self.phase(name):
                return fn(*args, **kwargs)

        def wrapped_generator(*args, **kwargs):
            items = iter(fn(*args, **kwargs))
            while True:
                with self.phase(name):
                    item = next(items, StopIteration)
                if item is StopIteration:
                    return
                yield item

        return wrapped_generator if generator else wrapped


@contextlib.contextmanager
def instrumented(timer: PhaseTimer) -> Iterator[None]:
    """Every function an embedding method's phases run through, wrapped by ``timer`` for the block; the
    perturbation hooks of the variational estimator also open a ``perturbation`` profiler range."""
    from taskspace import transfer
    from taskspace.embeddings import fisher, pseudotask, task2vec, ttk, variational

    def fit_wrapper(fn):
        def fit(body, head, batches, *args, **kwargs):
            return fn(body, head, timer.wrap(batches, "making the batches", generator=True), *args, **kwargs)

        return fit

    hook_call, squared_norms = variational.PerturbationHook.__call__, fisher._squared_norms

    def hook(self, module, args, output):
        with torch.profiler.record_function("perturbation"):
            return hook_call(self, module, args, output)

    def norms(*args, **kwargs):
        with torch.profiler.record_function("per-sample squared norms"):
            return squared_norms(*args, **kwargs)

    patches = [
        (task2vec, "run_in_batches", "forward passes over the samples"),
        (pseudotask, "run_in_batches", "forward passes over the samples"),
        (task2vec, "fit_head", "head fit (L-BFGS on the features)"),
        (pseudotask, "fit_zero_head", "head fit (Adam on the features)"),
        (fisher, "monte_carlo_fisher", "Monte-Carlo Fisher"),
        (transfer, "extract_features", "forward pass over the images"),
        (ttk, "random_network", "building the random network"),
        (ttk, "_block_gradient", "forward + MCR2 + backward"),
        (ttk, "mcr2_loss", "MCR2 loss"),
        (ttk, "count_sketch", "count sketch"),
    ]
    saved = [(module, attr, getattr(module, attr)) for module, attr, _ in patches]
    fit, saved_backward, saved_grad = variational.variational_fisher, torch.Tensor.backward, torch.autograd.grad
    try:
        for module, attr, label in patches:
            setattr(module, attr, timer.wrap(getattr(module, attr), label))
        variational.variational_fisher = timer.wrap(fit_wrapper(fit), "variational fit")
        variational.PerturbationHook.__call__ = timer.wrap(hook, "perturbation (forward hooks)")
        fisher._squared_norms = timer.wrap(norms, "per-sample squared norms")
        torch.Tensor.backward = timer.wrap(saved_backward, "backward")
        torch.autograd.grad = timer.wrap(saved_grad, "backward")
        yield
    finally:
        for module, attr, fn in saved:
            setattr(module, attr, fn)
        variational.variational_fisher = fit
        variational.PerturbationHook.__call__, fisher._squared_norms = hook_call, squared_norms
        torch.Tensor.backward, torch.autograd.grad = saved_backward, saved_grad


def operator_shares(prof) -> tuple[dict[str, float], list[tuple[str, str, float]]]:
    """Self CPU time (s) by part (network or perturbation, forward or backward) and the top operators."""
    parts: dict[str, float] = defaultdict(float)
    ops: dict[tuple[str, str], float] = defaultdict(float)
    for event in prof.events():
        if not event.name.startswith("aten::"):
            continue
        part, parent = "network and the rest, forward", event.cpu_parent
        while parent is not None:
            if parent.name in RANGES:
                part = RANGES[parent.name]
                break
            if parent.name.startswith("autograd::engine::evaluate_function: "):
                node = parent.name.split(": ", 1)[1]
                part = "perturbation, backward" if node in PERTURBATION_BACKWARD else "network, backward"
                break
            parent = parent.cpu_parent
        seconds = event.self_cpu_time_total / 1e6
        parts[part] += seconds
        ops[(event.name, part)] += seconds
    top = sorted(((name, part, t) for (name, part), t in ops.items()), key=lambda r: -r[2])
    return dict(parts), top


def print_breakdown(name: str, total: float, timer: PhaseTimer, prof) -> None:
    print(f"\n{name}: {total:.2f} CPU seconds in the instrumented call")

    def line(depth: int, label: str, seconds: float) -> None:
        print(f"  {'  ' * depth}{label:<{48 - 2 * depth}} {seconds:7.2f} s  {seconds / total:6.1%}")

    def show(parent: tuple[str, ...], seconds: float, rest: str) -> None:
        children = sorted((p for p in timer.totals if len(p) == len(parent) + 1 and p[:-1] == parent),
                          key=timer.order.__getitem__)
        for child in children:
            line(len(parent), child[-1], timer.totals[child])
            show(child, timer.totals[child], "the rest")
        if children:
            line(len(parent), rest, seconds - sum(timer.totals[c] for c in children))

    show((), total, "the rest (sampling, set-up)")
    parts, ops = operator_shares(prof)
    cpu = sum(parts.values())
    print("  operators' self CPU time (torch.profiler):", ", ".join(
        f"{part} {t / cpu:.0%}" for part, t in sorted(parts.items(), key=lambda r: -r[1]) if t >= 0.005 * cpu))
    for op, part, t in ops[:8]:
        print(f"    {op:<34} {part:<32} {t / cpu:6.1%}")


# ---------------------------------------------------------------- main


def embedding_arrays(emb) -> dict[str, np.ndarray]:
    return {"embedding": np.asarray(emb.vector), **{k: np.asarray(v) for k, v in emb.extras.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default="configs/packaged.yaml", type=Path)
    parser.add_argument("--results", default="results", type=Path, help="the run's results folder")
    parser.add_argument("--tasks", nargs="+", default=["emoji-animals-nature"])
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS, help="entries of embeddings.methods")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="the embed stage computes on one thread")
    parser.add_argument("--no-breakdown", action="store_true")
    parser.add_argument("--save", type=Path, help="write the warm-up calls' embeddings here")
    parser.add_argument("--compare", type=Path, help="check the warm-up calls' embeddings against those saved here")
    args = parser.parse_args()

    config = effective_config(load_config_files([args.config]))
    entries = run_plan(config).embed_params()  # {name: [method, config]}: what embed_batch gets
    unknown = [m for m in args.methods if m not in entries]
    if unknown:
        raise SystemExit(f"{unknown} are not methods of {args.config} (it has {sorted(entries)})")
    device = prepare_device(args.threads)
    scratch = tempfile.TemporaryDirectory()
    cases: dict[tuple[str, str], dict] = {}
    for task in args.tasks:
        task_file, probe_files = task_inputs(config, args.results, task, Path(scratch.name))
        ckpts = {kind: load_checkpoint(path) for kind, path in probe_files.items()}
        for name in args.methods:
            registered, method_cfg = entries[name]
            method = get_method(registered, method_cfg)
            data = read_task(task_file, labels=method.uses_labels)[0]
            train = data.is_train
            images, labels = data.images[train], data.labels[train] if method.uses_labels else None
            ckpt = ckpts[method.probe]
            seed = stable_seed(config["seed"], "embed", name, task)

            def call(method=method, ckpt=ckpt, images=images, labels=labels, seed=seed):
                return method.embed(network_from_checkpoint(ckpt), images, labels, ckpt["normalization"], device,
                                    seed)

            floor, made_of = floor_of(method, ckpt, images, data.labels[train] if data.labels is not None else None,
                                      device, seed)
            cases[(name, task)] = {"call": call, "floor": floor, "made_of": made_of, "method": [], "floors": []}

    rounds = f", medians of {args.rounds} interleaved rounds after a warm-up" if args.rounds else ""
    print(f"{args.config}: probe {config['probe']['arch']} ({config['probe'].get('weights')}), "
          f"{config['data']['resolution']} px, {args.threads} thread(s), device {device}{rounds}", flush=True)
    mismatches = 0
    for (name, task), case in cases.items():  # warm-up; the embeddings saved or compared
        arrays = embedding_arrays(case["call"]())
        if args.rounds:
            case["floor"]()
        for key, value in arrays.items():
            path = (args.save or args.compare or Path(".")) / name / task / f"{key}.npy"
            if args.save:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, value)
            elif args.compare:
                same = np.array_equal(np.load(path), value)
                mismatches += not same
                print(f"  {name} {task} {key}: {'bit-identical' if same else 'DIFFERS'} to {path}", flush=True)
    for r in range(args.rounds):
        for case in cases.values():
            for fn, times in ((case["call"], case["method"]), (case["floor"], case["floors"])):
                wall, cpu = time.perf_counter(), time.process_time()
                fn()
                times.append((time.perf_counter() - wall, time.process_time() - cpu))
        print(f"  round {r + 1}/{args.rounds} done", flush=True)

    if args.rounds:
        print("\nCPU seconds of this process (what other load on the machine leaves unchanged; the wall-clock ratio "
              "beside them; the range of the rounds' own ratios)\n\n| method | task | method (s) | floor (s) "
              "| method / floor | rounds | wall-clock ratio | the floor |\n|---|---|---|---|---|---|---|---|")
        for (name, task), case in cases.items():
            (m_wall, m), (f_wall, f) = (map(statistics.median, zip(*case[k])) for k in ("method", "floors"))
            per_round = [a[1] / b[1] for a, b in zip(case["method"], case["floors"])]
            print(f"| {name} | {task} | {m:.2f} | {f:.2f} | **{m / f:.2f}x** | {min(per_round):.2f}-"
                  f"{max(per_round):.2f} | {m_wall / f_wall:.2f}x | {case['made_of']} |")

    if not args.no_breakdown:
        for (name, task), case in cases.items():
            timer = PhaseTimer()
            with instrumented(timer), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
                start = time.process_time()
                case["call"]()
                total = time.process_time() - start
            print_breakdown(f"{name} on {task}", total, timer, p)
    if args.compare and mismatches:
        raise SystemExit(f"{mismatches} arrays differ from {args.compare}")


if __name__ == "__main__":
    main()
