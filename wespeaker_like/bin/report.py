"""Stage 7: results-table row, DET curve and t-SNE plot for one experiment and back-end.

    python -m wespeaker_like.bin.report --exp_dir exp/x --trials data/test/trials [--backend cosine] \\
        [--scores exp/x/scores/test.cosine.score] [--embeddings exp/x/embeddings/test/xvector.scp] \\
        [--utt2spk data/test/utt2spk] [--spk2gender data/test/spk2gender] \\
        [--results_md RESULTS.md] [--name x] [--train_time_seconds 5400] [--geometry] [--intra_class]

* ``RESULTS.md``: one Markdown-table row per (experiment name, back-end), appended, or replaced in
  place when that pair is already there (the rest of the file is kept), written atomically; run
  once per back-end, the rows of one experiment stand side by side. Columns:
  experiment | back-end | config | EER % | minDCF(0.01) | minDCF(0.05) | train time | date.
  A table of the earlier layout (no back-end column, all cosine) is converted in place.
  "config" summarises ``exp_dir/config.yaml``: model name, embedding dim, loss, epochs.
  Train time comes from ``--train_time_seconds`` or the first number (seconds) in
  ``exp_dir/train_time``; what is missing is reported on stderr and shown as "?".
  With ``--geometry`` the table has two more columns after the minDCFs, alignment (mean squared
  distance of same-speaker pairs) and uniformity (log mean exp(−2·squared distance) over all pairs)
  of the L2-normalised test embeddings (``scoring/geometry.py``; needs ``--embeddings``, ``--utt2spk``).
  With ``--intra_class`` three more columns (after those): the mean cosine distance of same-speaker
  pairs of test embeddings, of different-speaker pairs, and their ratio (intra-class variation).
* With ``--paper_trials NAME`` and a ``paper:`` block in the config (``{table, row, numbers: {NAME:
  {eer, min_dcf}}}``), a row of a second table sets our EER / minDCF(0.01) beside the paper's:
  experiment | paper table | paper row | trials | P_target | EER % | paper EER % | minDCF | paper minDCF
  (the paper block's ``p_target``, default 0.01, picks the minDCF).
  ``--stats a,b`` appends those means of the last ``epoch N done:`` line of ``exp_dir/train.log`` to
  the config cell (e.g. the collapse statistics of self-supervised runs).
* ``exp_dir/det.png`` (``det_<backend>.png`` for a back-end other than cosine): DET curve on
  normal-deviate axes, EER and minDCF points marked.
* ``exp_dir/tsne.png``: t-SNE of the test embeddings coloured by speaker and by gender
  (needs ``--embeddings`` and ``--utt2spk``; ``--spk2gender`` optional).
* With ``--probe_train DIR --probe_test DIR --probe_labels utt2dev...`` (embeddings of each branch
  in ``DIR/<x|x_s|x_d>/xvector.scp``, from ``extract --branch``): the disentanglement diagnostics of
  ``scoring/disentanglement.py`` as a row of ``--probe_md`` (device-probe accuracy per branch,
  Gaussian MI(x_s; x_d), chance level) and ``exp_dir/tsne_device.png``.

EER / minDCF are recomputed from the score file and the trial list.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from wespeaker_like.bin._entry import ArgumentParser, entry_point
from wespeaker_like.data.kaldi_dir import read_table
from wespeaker_like.data.trials import read_trials
from wespeaker_like.errors import InputError
from wespeaker_like.fileio import atomic_write
from wespeaker_like.scoring.metrics import det_curve, eer_from_curve, format_p_target, min_dcf_from_curve

P_TARGETS = (0.01, 0.05)
METRIC_COLUMNS = ["EER %"] + [f"minDCF({format_p_target(p)})" for p in P_TARGETS]
COLUMNS = ["experiment", "back-end", "config"] + METRIC_COLUMNS + ["train time", "date"]
PAPER_COLUMNS = ["experiment", "paper table", "paper row", "trials", "P_target", "EER %", "paper EER %", "minDCF",
                 "paper minDCF"]
GEOMETRY_CELLS = ["alignment", "uniformity"]
INTRA_CLASS_CELLS = ["within dist", "between dist", "within/between"]


def results_columns(extra_cells: Sequence[str] = ()) -> List[str]:
    """The results table's header with ``extra_cells`` (embedding statistics) after the minDCFs."""
    return COLUMNS[:6] + list(extra_cells) + COLUMNS[6:]


TRAIN_TIME_FILES = ("train_time", "train_time.txt")
PROBE_COLUMNS = ["experiment", "probe x", "probe x_s", "probe x_d", "MI(x_s; x_d) nats", "chance", "date"]


def warn(message: str) -> None:
    print(f"report: {message}", file=sys.stderr)


# ----------------------------------------------------------------------------- config summary

def _find_key(tree: Any, names: Sequence[str]) -> Any:
    """Value of the shallowest key in ``names`` anywhere in nested dicts (breadth first)."""
    level = [tree]
    while level:
        for node in level:
            for name in names:
                if isinstance(node, dict) and name in node and node[name] is not None:
                    return node[name]
        level = [v for node in level if isinstance(node, dict) for v in node.values()
                 if isinstance(v, dict)]
    return None


def _name_of(value: Any) -> Optional[str]:
    """``{"name": "x", ...}`` or ``"x"`` -> ``"x"``."""
    if isinstance(value, dict):
        value = value.get("name")
    return None if value is None else str(value)


def summarise_config(config: Dict[str, Any]) -> str:
    """``"ecapa_tdnn, emb 192, classification/aam, 40 ep"`` from a training config.

    Shows only the parts found: ``model`` (its ``name``), an embedding-dim key (``embed_dim``,
    ``embedding_dim``, ``emb_dim``, ``embedding_size``), the top-level ``objective`` name and the
    ``loss`` name (e.g. ``objective.loss.name``), and an epoch-count key (``epochs``,
    ``num_epochs``, ``max_epochs``, ``max_epoch``, e.g. ``trainer.epochs``); keys other than
    ``objective`` are searched at any depth, shallowest first.
    """
    parts = []
    model = _name_of(_find_key(config, ["model"]))
    if model:
        parts.append(model)
    dim = _find_key(config, ["embed_dim", "embedding_dim", "emb_dim", "embedding_size"])
    if dim is not None:
        parts.append(f"emb {dim}")
    loss = _name_of(_find_key(config, ["loss"]))
    objective = _name_of(config.get("objective"))
    if objective or loss:
        parts.append("/".join(p for p in (objective, loss) if p) + _objective_terms(config.get("objective")))
    epochs = _find_key(config, ["epochs", "num_epochs", "max_epochs", "max_epoch"])
    if epochs is not None:
        parts.append(f"{epochs} ep")
    return ", ".join(parts) or "?"


def _objective_terms(objective: Any) -> str:
    """``"+supmargincon+mi 0.1"``: the extra terms an objective switches on (contrastive, MI), if any;
    ``" (speaker 5 device 10)"``: the non-zero loss weights of an objective with a ``weights`` block (CLUB)."""
    if not isinstance(objective, dict):
        return ""
    terms = ""
    contrastive = objective.get("contrastive")
    if isinstance(contrastive, dict) and contrastive.get("name", "none") != "none":
        terms += f"+{contrastive['name']}"
    mi = objective.get("mi")
    if isinstance(mi, dict) and mi.get("weight"):
        terms += f"+mi {mi['weight']}"
    weights = objective.get("weights")
    if isinstance(weights, dict):
        terms += " (" + " ".join(f"{name} {value:g}" for name, value in weights.items() if value) + ")"
    return terms


def load_config(path: Path) -> Optional[Dict[str, Any]]:
    """The YAML mapping of ``path``; None (with a warning) when it is missing or not a mapping."""
    if not path.is_file():
        warn(f"{path}: not found; config column left as '?'")
        return None
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise InputError(path, f"not valid YAML: {getattr(err, 'problem', err)}",
                         None if mark is None else mark.line + 1) from None
    if not isinstance(config, dict):
        warn(f"{path}: expected a YAML mapping; config column left as '?'")
        return None
    return config


def paper_row(name: str, config: Dict[str, Any], config_path: Path, trials_name: str, eer: float,
              dcfs: Dict[float, Any]) -> List[str]:
    """Cells of ``PAPER_COLUMNS``: our EER (fraction) and minDCF beside the config's ``paper:`` numbers.

    ``paper: {table, row, p_target (default 0.01, one of P_TARGETS), numbers: {trials: {eer, min_dcf}}}``;
    ``min_dcf: null`` for a paper that reports EER only (shown as "–").
    """
    paper = config.get("paper") or {}
    numbers = (paper.get("numbers") or {}).get(trials_name)
    if not isinstance(numbers, dict) or "eer" not in numbers or "min_dcf" not in numbers:
        known = ", ".join(sorted(paper.get("numbers") or {})) or "none"
        raise InputError(config_path, f"paper.numbers has no {{eer, min_dcf}} for trials '{trials_name}' "
                         f"(given: {known})")
    p_target = float(paper.get("p_target", 0.01))
    if p_target not in dcfs:
        raise InputError(config_path, f"paper.p_target must be one of {', '.join(map(str, P_TARGETS))}, got {p_target}")
    return [name, str(paper.get("table", "?")), str(paper.get("row", "?")), trials_name, format_p_target(p_target),
            f"{100 * eer:.2f}", f"{float(numbers['eer']):.2f}", f"{dcfs[p_target].min_dcf:.3f}",
            "–" if numbers["min_dcf"] is None else f"{float(numbers['min_dcf']):.3f}"]


# ----------------------------------------------------------------------------- train time

def read_train_time(exp_dir: Path) -> Optional[float]:
    """Seconds from the first number in ``exp_dir/train_time`` (or ``train_time.txt``)."""
    for name in TRAIN_TIME_FILES:
        path = exp_dir / name
        if path.is_file():
            match = re.search(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?", path.read_text(encoding="utf-8"))
            if match is None:
                warn(f"{path}: expected a number of seconds; train time left as '?'")
                return None
            return float(match.group())
    warn(f"{exp_dir}/train_time: not found and no --train_time_seconds; train time left as '?'")
    return None


def format_duration(seconds: Optional[float]) -> str:
    """``45 -> "45s"``, ``754 -> "12m 34s"``, ``7530 -> "2h 05m"``, None -> ``"?"``."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


# ----------------------------------------------------------------------------- training statistics

def last_epoch_means(log_path: Path) -> Dict[str, float]:
    """``{name: value}`` of the last ``epoch N done: name value ...`` line of a train.log ({} if none)."""
    if not log_path.is_file():
        return {}
    lines = [line for line in log_path.read_text(encoding="utf-8").splitlines() if re.search(r"epoch \d+ done:", line)]
    if not lines:
        return {}
    body = lines[-1].split("done:", 1)[1].split("(")[0].split()
    return {name: float(value) for name, value in zip(body[::2], body[1::2])}


def format_stats(means: Dict[str, float], names: Sequence[str], log_path: Path) -> str:
    """``"end: a 0.0700, b 6.15"`` for the requested names; missing ones are warned about and skipped."""
    missing = [n for n in names if n not in means]
    if missing:
        warn(f"{log_path}: no '{missing[0]}' in the last 'epoch N done' line; left out of the row")
    shown = [f"{n} {means[n]:.4g}" for n in names if n in means]
    return "end: " + ", ".join(shown) if shown else ""


# ----------------------------------------------------------------------------- Markdown table

def _escape(cell: str) -> str:
    return str(cell).replace("\n", " ").replace("|", "\\|")


def _cells(line: str) -> List[str]:
    """Cells of a Markdown table line, split on unescaped pipes, unescaped and stripped."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def _format_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_escape(c) for c in cells) + " |"


def _add_backend_column(lines: List[str], columns: Sequence[str]) -> List[str]:
    """Convert a table with ``columns``' header less its back-end column: its rows become cosine rows."""
    if len(columns) < 2 or columns[1] != "back-end":
        return lines
    legacy = [columns[0]] + list(columns[2:])  # the layout before back-ends were compared: all cosine
    header = next((i for i, line in enumerate(lines)
                   if line.lstrip().startswith("|") and _cells(line) == legacy), None)
    if header is None:
        return lines
    lines = list(lines)
    lines[header] = _format_row(columns)
    lines[header + 1] = "|" + "---|" * len(columns)
    end = header + 2
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        cells = _cells(lines[end])
        lines[end] = _format_row(cells[:1] + ["cosine"] + cells[1:])
        end += 1
    return lines


def update_results_table(text: str, row: Sequence[str], columns: Sequence[str] = COLUMNS, key: int = 2) -> str:
    """Return ``text`` with ``row`` (cells in ``columns`` order) in the table with that header.

    A row whose first ``key`` cells (experiment and back-end, or experiment and paper table; the
    experiment alone for a table of measurements such as the probe's) equal ``row[:key]`` is replaced
    in place; otherwise the row is added after the experiment's
    last row, or at the end of the table. Without a table (header equal to ``columns``), one is
    appended.
    """
    columns = list(columns)
    lines = _add_backend_column(text.splitlines(), columns)
    header = next((i for i, line in enumerate(lines)
                   if line.lstrip().startswith("|") and _cells(line) == columns), None)
    new = _format_row(row)
    if header is None:
        block = [_format_row(columns), "|" + "---|" * len(columns), new]
        if not lines:
            lines = ["# Results", ""]
        elif lines[-1].strip():
            lines.append("")
        return "\n".join(lines + block) + "\n"
    end = header + 2  # first line after the separator
    while end < len(lines) and lines[end].lstrip().startswith("|"):
        end += 1
    same_experiment = [i for i in range(header + 2, end) if _cells(lines[i])[0] == str(row[0])]
    for i in same_experiment:
        if _cells(lines[i])[1:key] == [str(cell) for cell in row[1:key]]:
            lines[i] = new
            break
    else:
        lines.insert(same_experiment[-1] + 1 if same_experiment else end, new)
    return "\n".join(lines) + "\n"


def write_results_row(path: Path, row: Sequence[str], columns: Sequence[str] = COLUMNS, key: int = 2) -> None:
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    with atomic_write(path) as handle:
        handle.write(update_results_table(old, row, columns, key))


# ----------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m wespeaker_like.bin.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--exp_dir", required=True, type=Path, help="experiment dir (config.yaml, scores/, train_time)")
    parser.add_argument("--trials", required=True, type=Path, help="trial list the scores belong to")
    parser.add_argument("--backend", default="cosine",
           help="back-end that made the scores: the row's back-end cell (default cosine)")
    parser.add_argument("--scores", type=Path, default=None,
           help="score file (default: EXP_DIR/scores/test.BACKEND.score)")
    parser.add_argument("--embeddings", type=Path, default=None,
           help="test embedding scp for t-SNE (default: EXP_DIR/embeddings/test/xvector.scp if present)")
    parser.add_argument("--utt2spk", type=Path, default=None, help="test utt2spk (needed for t-SNE)")
    parser.add_argument("--spk2gender", type=Path, default=None, help="test spk2gender (t-SNE gender panel)")
    parser.add_argument("--config", type=Path, default=None, help="config YAML (default: EXP_DIR/config.yaml)")
    parser.add_argument("--results_md", type=Path, default=Path("RESULTS.md"), help="Markdown results table to update")
    parser.add_argument("--name", default=None, help="row label (default: the exp dir's name)")
    parser.add_argument("--paper_trials", default=None,
                        help="key of the config's paper.numbers for these trials: adds a row beside the paper's")
    parser.add_argument("--stats", default="",
                        help="comma-separated train.log means of the last epoch to add to the config cell")
    parser.add_argument("--train_time_seconds", type=float, default=None,
           help="training time in seconds (default: read EXP_DIR/train_time)")
    parser.add_argument("--det_png", type=Path, default=None, help="DET plot (default: EXP_DIR/det.png, det_BACKEND.png for other back-ends)")
    parser.add_argument("--tsne_png", type=Path, default=None, help="t-SNE plot (default: EXP_DIR/tsne.png)")
    parser.add_argument("--tsne_max_utts", type=int, default=3000,
           help="t-SNE at most this many utterances, keeping whole speakers (default 3000)")
    parser.add_argument("--tsne_perplexity", type=float, default=30.0, help="t-SNE perplexity (default 30)")
    parser.add_argument("--tsne_iterations", type=int, default=1000, help="t-SNE optimisation steps (>= 250; default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for t-SNE and speaker subsampling")
    parser.add_argument("--no_tsne", action="store_true", help="skip the t-SNE plot")
    parser.add_argument("--probe_train", type=Path, default=None,
                        help="dir of training-set embeddings per branch (<dir>/<x|x_s|x_d>/xvector.scp)")
    parser.add_argument("--probe_test", type=Path, default=None, help="the same for held-out utterances")
    parser.add_argument("--probe_labels", type=Path, nargs="+", default=[],
                        help="utt2dev file(s) with the nuisance label of every probed utterance")
    parser.add_argument("--probe_md", type=Path, default=Path("DISENTANGLEMENT.md"),
                        help="Markdown table of the probe diagnostics to update")
    parser.add_argument("--geometry", action="store_true",
           help="add alignment and uniformity of the test embeddings (needs --embeddings and --utt2spk)")
    parser.add_argument("--intra_class", action="store_true",
           help="add the mean within- and between-speaker cosine distances of the test embeddings and their "
                "ratio (needs --embeddings and --utt2spk)")
    return parser


def _embeddings_scp(args: argparse.Namespace) -> Optional[Path]:
    if args.embeddings is not None:
        return args.embeddings
    default = args.exp_dir / "embeddings" / "test" / "xvector.scp"
    return default if default.is_file() else None


def _test_embeddings(args: argparse.Namespace, embeddings_scp: Path):
    """(EmbeddingTable, utt2spk) of the test set; InputError for an utterance without a speaker."""
    from wespeaker_like.scoring.cosine import load_embeddings

    table = load_embeddings(embeddings_scp)
    utt2spk = read_table(args.utt2spk)
    unknown = [u for u in table.keys if u not in utt2spk]
    if unknown:
        raise InputError(args.utt2spk, f"no speaker for utterance '{unknown[0]}' of '{embeddings_scp}' "
                         f"({len(unknown)} such; expected utt2spk of the embedded set)")
    return table, utt2spk


def _test_matrix(args: argparse.Namespace, option: str):
    """(N, D) float64 test embeddings and (N,) speaker ids, for the embedding statistics of ``option``."""
    import torch

    embeddings_scp = _embeddings_scp(args)
    if embeddings_scp is None or args.utt2spk is None:
        raise InputError(args.exp_dir, f"{option} needs the test embeddings (--embeddings or "
                         "EXP_DIR/embeddings/test/xvector.scp) and --utt2spk")
    table, utt2spk = _test_embeddings(args, embeddings_scp)
    x = torch.as_tensor(np.asarray(table.matrix, dtype=np.float64))
    speaker_ids = {spk: i for i, spk in enumerate(sorted(set(utt2spk[u] for u in table.keys)))}
    return x, torch.tensor([speaker_ids[utt2spk[u]] for u in table.keys])


def embedding_geometry(args: argparse.Namespace) -> List[str]:
    """Alignment and uniformity cells (3 decimals) of the test embeddings."""
    from wespeaker_like.scoring.geometry import speaker_alignment, uniformity

    x, speakers = _test_matrix(args, "--geometry")
    return [f"{speaker_alignment(x, speakers).item():.3f}", f"{uniformity(x).item():.3f}"]


def intra_class_cells(args: argparse.Namespace) -> List[str]:
    """Within-speaker and between-speaker mean cosine distances and their ratio (3 decimals)."""
    from wespeaker_like.scoring.geometry import intra_class_distances

    x, speakers = _test_matrix(args, "--intra_class")
    return [f"{value:.3f}" for value in intra_class_distances(x, speakers)]


def _tsne(args: argparse.Namespace, tsne_png: Path) -> None:
    from wespeaker_like.scoring.plots import plot_tsne, select_by_speaker, tsne_2d

    embeddings_scp = _embeddings_scp(args)
    if embeddings_scp is None or args.utt2spk is None:
        missing = "--embeddings" if embeddings_scp is None else "--utt2spk"
        warn(f"no t-SNE plot: {missing} not given")
        return
    table, utt2spk = _test_embeddings(args, embeddings_scp)
    if len(table.keys) < 4:
        warn(f"no t-SNE plot: {embeddings_scp} has {len(table.keys)} embeddings, t-SNE needs at least 4")
        return
    spk2gender: Dict[str, str] = {}
    if args.spk2gender is not None:
        spk2gender = {spk: g.strip().lower() for spk, g in read_table(args.spk2gender).items()}
    else:
        warn("no --spk2gender: gender panel shows 'unknown'")
    utts = select_by_speaker(table.keys, utt2spk, args.tsne_max_utts, args.seed)
    if len(utts) < len(table.keys):
        warn(f"t-SNE on {len(utts)} of {len(table.keys)} utterances (--tsne_max_utts {args.tsne_max_utts})")
    speakers = [utt2spk[u] for u in utts]
    missing = sorted({s for s in speakers if s not in spk2gender}) if spk2gender else []
    if missing:
        warn(f"{args.spk2gender}: no gender for {len(missing)} speakers (e.g. '{missing[0]}'); shown as unknown")
    start = time.perf_counter()
    points = tsne_2d(table.matrix[table.rows(utts)], seed=args.seed, perplexity=args.tsne_perplexity,
                     iterations=args.tsne_iterations)
    plot_tsne(tsne_png, points, speakers, [spk2gender.get(s, "?") for s in speakers],
              title=f"t-SNE of {embeddings_scp}", seed=args.seed)
    print(f"t-SNE plot ({len(utts)} utterances, {time.perf_counter() - start:.1f} s) -> {tsne_png}")


def run(args: argparse.Namespace) -> List[str]:
    """Write the table row and the plots; return the row's cells."""
    from wespeaker_like.scoring.scores import align_scores, read_scores

    exp_dir = args.exp_dir
    if not exp_dir.is_dir():
        raise InputError(exp_dir, "experiment directory not found")
    name = args.name or exp_dir.resolve().name
    scores_path = args.scores or exp_dir / "scores" / f"test.{args.backend}.score"
    trials = read_trials(args.trials)
    scores, labels = align_scores(read_scores(scores_path), trials, scores_path, args.trials)

    curve = det_curve(scores, labels)
    eer, _ = eer_from_curve(curve)
    dcfs = {p: min_dcf_from_curve(curve, p) for p in P_TARGETS}
    dcf_points = {}
    for p, result in dcfs.items():
        k = int(np.searchsorted(curve.thresholds, result.threshold))
        dcf_points[f"minDCF({format_p_target(p)}) {result.min_dcf:.3f}"] = (curve.p_fa[k], curve.p_miss[k])
    from wespeaker_like.scoring.plots import plot_det  # matplotlib: import only once inputs are good

    det_png = args.det_png or exp_dir / ("det.png" if args.backend == "cosine" else f"det_{args.backend}.png")
    plot_det(det_png, curve, eer, dcf_points, title=f"DET: {name} ({args.backend})", label=name)
    print(f"DET plot -> {det_png}")

    train_time = args.train_time_seconds
    if train_time is None:
        train_time = read_train_time(exp_dir)
    config_path = args.config or exp_dir / "config.yaml"
    config = load_config(config_path)
    beside_paper = None
    if args.paper_trials is not None:
        if config is None:
            raise InputError(config_path, f"--paper_trials {args.paper_trials} needs the config's paper: block")
        beside_paper = paper_row(name, config, config_path, args.paper_trials, eer, dcfs)
    summary = "?" if config is None else summarise_config(config)
    stat_names = [n for n in args.stats.split(",") if n]
    if stat_names:
        stats = format_stats(last_epoch_means(exp_dir / "train.log"), stat_names, exp_dir / "train.log")
        summary = "; ".join(part for part in (summary, stats) if part)
    row = [name, args.backend, summary, f"{100 * eer:.2f}"]
    row += [f"{dcfs[p].min_dcf:.3f}" for p in P_TARGETS]
    extra_columns = []
    if args.geometry:
        row += embedding_geometry(args)
        extra_columns += GEOMETRY_CELLS
    if args.intra_class:
        row += intra_class_cells(args)
        extra_columns += INTRA_CLASS_CELLS
    row += [format_duration(train_time), datetime.date.today().isoformat()]
    write_results_row(args.results_md, row, results_columns(extra_columns))
    print(f"{args.results_md}: {_format_row(row)}")
    if beside_paper is not None:
        write_results_row(args.results_md, beside_paper, PAPER_COLUMNS)
        print(f"{args.results_md}: {_format_row(beside_paper)}")

    if not args.no_tsne:
        _tsne(args, args.tsne_png or exp_dir / "tsne.png")
    if args.probe_test is not None:
        disentanglement_row(args, name)
    return row


def disentanglement_row(args: argparse.Namespace, name: str) -> List[str]:
    """Probe accuracies (%), MI and chance of one experiment, written as a row of ``--probe_md``."""
    from wespeaker_like.scoring.disentanglement import diagnose

    if args.probe_train is None or not args.probe_labels:
        raise InputError(args.probe_test, "the probe needs --probe_train and --probe_labels too")
    labels: Dict[str, str] = {}
    for path in args.probe_labels:
        labels.update(read_table(path))
    results = diagnose(args.probe_train, args.probe_test, labels, args.probe_labels[0],
                       None if args.no_tsne else args.exp_dir / "tsne_device.png", seed=args.seed,
                       tsne_max_utts=args.tsne_max_utts)
    cells = [f"{100 * results[k]:.1f}" if k in results else "-" for k in ("probe_x", "probe_x_s", "probe_x_d")]
    mi = f"{results['mi_x_s_x_d']:.3f}" if "mi_x_s_x_d" in results else "-"
    row = [name, *cells, mi, f"{100 * results['chance']:.1f}", datetime.date.today().isoformat()]
    write_results_row(args.probe_md, row, PROBE_COLUMNS, key=1)
    print(f"{args.probe_md}: {_format_row(row)}")
    return row


@entry_point("report")
def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.tsne_max_utts < 4:
        build_parser().error("--tsne_max_utts must be at least 4")
    if args.tsne_iterations < 250:
        build_parser().error("--tsne_iterations must be at least 250")
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
