"""The two papers' reported numbers and claims, and every figure/table of both papers.

Everything here is copied from ``../shared/spec/`` with its source tag, so the report can put
"paper reports" beside "we measure" without a figure module hard-coding the paper's numbers.

Tags (as in the spec): [P] the paper's own text; [C] the authors' code; [C-out] a number printed by
the authors' notebooks (real output, but whether the paper prints exactly it is mostly unknown);
[V-rev] stated by the paper's OpenReview reviewers; [3rd] third-party summaries; [SIM] the spec
author's own simulation of the reconstructed model (NOT the paper); [INF] an inference.

A figure compares itself with the papers through ``Figure.paper_vs_ours(inputs) -> rows``; a row is
a :class:`Comparison` or a dict with the same keys (see :func:`comparison` and docs/reports.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

RULES = "rules-paper-protocol.md"
FL = "feature-learning-paper.md"
SEED = "seeds/000_4314c9e37aa2eda5.txt"
RULES_ID = "Rules paper (arXiv 2502.04725)"
FL_ID = "Feature-learning paper (arXiv 2412.01021)"


@dataclass(frozen=True)
class Ref:
    """One reported number or claim: ``text`` is what is shown; ``value`` the number, when there is one
    (for an OLS fit: its R², with slope, intercept and r2 in ``values``)."""

    key: str
    paper: str  # RULES_ID or FL_ID
    quantity: str
    text: str
    source: str  # spec file and section
    tag: str  # [P], [C-out], [V-rev], [3rd], [SIM], [INF]
    value: float | None = None  # the headline number (R² for a fit)
    values: dict = field(default_factory=dict)  # further numbers, e.g. a fit's slope, intercept and r2


def _refs() -> dict[str, Ref]:
    refs: list[Ref] = []
    add = refs.append
    s41, s42, s43, s44 = (f"{RULES} §4.{i}" for i in (1, 2, 3, 4))
    train_fit = {"A": (1.09, 0.99), "B": (1.00, 1.00), "C": (1.41, 1.00), "D": (1.50, 1.00)}
    gen_fit = {  # the bold rows of §4.1 (U-Net generations at the checkpoints used for the figures)
        "A": ("y = 0.81x + 0.00", 0.85, "1387 coarse-passing samples, epoch 400"),
        "B": ("y = 0.93x + 0.00", 0.88, "1136 points, ratio filter, epoch 800"),
        "C": ("y = 1.16x + 0.05", 0.68, "1111 points, jitter 0.01, epoch 1600"),
        "D": ("y = 1.36x + 0.05", 0.85, "1350 points, jitter 0.02, epoch 1000"),
    }
    conform = {"A": (95.02, 75.53), "B": (97.22, 80.99), "C": (99.51, 49.27), "D": (98.63, 69.67)}
    exact_eval = {"A": (0.93, 93), "B": (0.93, 31), "C": (0.92, 11), "D": (0.82, 38)}
    for t in "ABCD":
        a, r2 = train_fit[t]
        add(Ref(f"rules.train_fit.{t}", RULES_ID, f"Task {t}: OLS fit on training images",
                f"y = {a:.2f}x − 0.00, R² = {r2:.2f}", s41, "[C-out]", r2, {"slope": a, "intercept": 0.0, "r2": r2}))
        fit, r2g, how = gen_fit[t]
        slope, intercept = (float(v) for v in fit.removeprefix("y = ").replace("x", "").split(" + "))
        add(Ref(f"rules.gen_fit.{t}", RULES_ID, f"Task {t}: OLS fit on generated images (U-Net)",
                f"{fit}, R² = {r2g:.2f} ({how})", s41, "[C-out]", r2g, {"slope": slope, "intercept": intercept, "r2": r2g}))
        tr, ge = conform[t]
        add(Ref(f"rules.conform_train.{t}", RULES_ID, f"Task {t}: rule-conforming % (0.05 bins), training",
                f"{tr:.2f} %", s42, "[C-out]", tr))
        add(Ref(f"rules.conform_gen.{t}", RULES_ID, f"Task {t}: rule-conforming % (0.05 bins), generated",
                f"{ge:.2f} %", s42, "[C-out]", ge))
        r2e, parsed = exact_eval[t]
        add(Ref(f"rules.authors_eval_exact.{t}", RULES_ID,
                f"Task {t}: the authors' evaluator on exact 32 px renders", f"R² {r2e:.2f}, {parsed} % parsed",
                f"{RULES} §3.5b", "[C]", r2e))
    # the authors' evaluator rebuilt (paper-protocol-evaluator.md Sec. 8, paper-size exact renders, seed 0,
    # headline recipes): the spec author's own measurement, hence [SIM]
    ppe = "paper-protocol-evaluator.md §8"
    for t, (r2p, slope, parsed, n) in {"A": (0.903, 0.830, 3737, 4000), "B": (0.922, 0.939, 1116, 2000),
                                       "C": (0.939, 1.322, 228, 2000), "D": (0.861, 1.345, 954, 2000)}.items():
        add(Ref(f"rules.paper_protocol_ceiling.{t}", RULES_ID,
                f"Task {t}: the authors' evaluator (headline recipe) on exact 32 px renders at the paper's size",
                f"R² {r2p:.3f}, slope {slope:.3f}, {parsed} of {n} parsed (rebuild)", ppe, "[SIM]", r2p,
                {"r2": r2p, "slope": slope, "parsed": parsed, "n": n}))
    add(Ref("rules.coarse.A", RULES_ID, "Task A: coarse violations (sun and shadow on one side), generated",
            "near zero; at least one same-side image in the unguided epoch-400 run, full count unknown", s43, "[C-out]"))
    for t, what in (("B", "far rectangle not shorter (h1 ≤ h2)"), ("C", "equal radii"), ("D", "upper square not smaller")):
        add(Ref(f"rules.coarse.{t}", RULES_ID, f"Task {t}: coarse violations ({what}), generated", "0 images (0 %)",
                s43, "[C-out]", 0.0))
    add(Ref("rules.coarse_guided.A", RULES_ID, "Task A: same-side rate of one guided run", "≈ 2.7 % (39 of 1452)",
            f"{RULES} §3.1", "[C-out]", 2.7))
    add(Ref("rules.table1", RULES_ID, "Table 1 values", "unknown; §4.3 infers near-zero coarse violations", s43, "[INF]"))
    clf = {"mlp": (67.47, 77.58, 45.83, 81.17), "resnet8": (62.74, 66.50, 80.17, 75.83), "conv": (64.25, 75.13, 82.37, 81.17)}
    names = {"mlp": "MLP", "resnet8": "ResNet-8", "conv": "small conv 'U-Net'"}
    for arch, accs in clf.items():
        for t, acc in zip("ABCD", accs):
            add(Ref(f"rules.clf_acc.{arch}.{t}", RULES_ID, f"Task {t}: {names[arch]} classifier test accuracy (3 classes)",
                    f"{acc:.2f} %", s44, "[C-out]", acc))
    add(Ref("rules.clf_claim", RULES_ID, "contrastive classes are hard to separate", "accuracy 60-80 %", SEED, "[3rd]"))
    add(Ref("rules.mlp_fit.A", RULES_ID, "Task A: MLP denoiser fit", "y = 0.56x + 0.11, R² = 0.18", s41, "[C-out]", 0.18))
    add(Ref("rules.ar_fit.A", RULES_ID, "Task A: AR diffusion fit", "y = 0.84x + 0.01, R² = 0.91", s41, "[C-out]", 0.91))
    add(Ref("rules.ar_vs_ddpm", RULES_ID, "Task A: late-training loss drop, DDPM minus AR",
            "δ > 0 in 57.85 % of steps, mean δ = 9.2e-4", f"{RULES} §4.5", "[C-out]", 57.85))
    add(Ref("rules.guidance", RULES_ID, "classifier guidance improves the fine rule", "'limited' improvement",
            f"{RULES} §4.6", "[P]"))
    add(Ref("rules.guidance_gain", RULES_ID, "R² gain from classifier guidance", "0.05-0.10", SEED, "[3rd]"))
    add(Ref("rules.r2_below_09", RULES_ID, "fine rule R² of generated images", "below 0.9 for every task, model size "
            "(14M U-Net to 130M DiT-B/2) and data scale (4K to 40K)", SEED, "[3rd]", 0.9))
    add(Ref("rules.memorise.A", RULES_ID, "Task A: rule-exact samples memorised (4-D positions) by NN distance",
            "0/10 at t = 0, 2/10 at 0.01, 8/10 at 0.03, 10/10 at t ≥ 0.05", f"{RULES} §3.7", "[C-out]", 8 / 10))
    add(Ref("rules.memorise13.A", RULES_ID, "Task A: the same with colours (13-D)",
            "0/10 up to t = 0.3, 3/10 at 0.5, 10/10 at t ≥ 0.7", f"{RULES} §3.7", "[C-out]"))
    add(Ref("rules.highquality", RULES_ID, "rule-exact generated samples (ratio within 1 %)", "A 10, B 6, C 1, D 1",
            f"{RULES} §3.7", "[C-out]"))
    add(Ref("rules.theory.constant_error", RULES_ID, "DSM-trained score networks and the hidden rule",
            "constant, non-vanishing rule-conforming error (bias and variance), whatever the width and training time",
            f"{RULES} §5", "[P]"))
    add(Ref("rules.fig6.settings", RULES_ID, "Figure 6 simulation", "two-layer score network, d = 100, m = 20; ψ_t "
            "distribution over t has non-zero bias and variance", "rules-theory-derivation.md", "[3rd]"))

    add(Ref("fl.fig2.nsnr2", FL_ID, "Figure 2 panels", "n·SNR² = 0.75 (low) and 6.75 (high)", f"{FL} §5", "[V-rev]"))
    add(Ref("fl.diffusion.ratio", FL_ID, "diffusion: signal / noise learning ratio at the stationary point",
            "Θ(n·SNR²): slope 1 against n·SNR² on log-log axes", f"{FL} §4", "[V-rev] [3rd]", 1.0))
    add(Ref("fl.diffusion.balanced", FL_ID, "diffusion learns signal and noise",
            "both, in a balanced way; the ratio changes little between the two Figure 2 panels", f"{FL} §4-5", "[V-rev]"))
    add(Ref("fl.classification.phase", FL_ID, "classification: outcome against n·SNR²",
            "sharp phase transition: signal learning above a threshold of n·SNR², noise memorisation below",
            f"{FL} §4", "[V-rev] [3rd]"))
    add(Ref("fl.growth", FL_ID, "early growth of the alignments", "linear for diffusion, exponential for classification",
            f"{FL} §2", "[3rd]"))
    add(Ref("fl.noisy_mnist", FL_ID, "Noisy-MNIST: digit patch + Gaussian patch",
            "diffusion learns both the digits and the noise; classification mostly one of them", f"{FL} §5", "[V-acm] [INF]"))
    sim = f"{FL} §7"
    add(Ref("fl.sim.classification.0.75", FL_ID, "spec's own run: classification ratio at n·SNR² = 0.75", "0.007",
            sim, "[SIM]", 0.007))
    add(Ref("fl.sim.classification.6.75", FL_ID, "spec's own run: classification ratio at n·SNR² = 6.75", "29.9",
            sim, "[SIM]", 29.9))
    add(Ref("fl.sim.diffusion.0.75", FL_ID, "spec's own run: diffusion ratio at n·SNR² = 0.75", "≈ 0.28", sim, "[SIM]", 0.28))
    add(Ref("fl.sim.diffusion.6.75", FL_ID, "spec's own run: diffusion ratio at n·SNR² = 6.75", "≈ 1.65", sim, "[SIM]", 1.65))
    return {r.key: r for r in refs}


REFERENCE: dict[str, Ref] = _refs()


@dataclass(frozen=True)
class Comparison:
    """One row of a "paper reports / we measure" table.

    ``ref`` names a :data:`REFERENCE` entry, which fills ``quantity``, ``paper`` and ``source`` when they
    are left empty. ``agrees``: True, False or None (not comparable / qualitative). A row with
    ``agrees=False`` must say why in ``note``; the report flags it otherwise.
    """

    ours: str
    ref: str = ""
    quantity: str = ""
    paper: str = ""
    source: str = ""
    note: str = ""
    agrees: bool | None = None
    figure: str = ""  # filled in by the pipeline
    # issue 11: the authors' evaluator (paper protocol) on the same samples, shown beside ``ours``. A row
    # with ``annotates`` set only lends its ``paper_protocol`` to the rows of the same ``ref`` whose ``ours``
    # contains that text (e.g. "unet, paper preset"); it is shown on its own only when none matches.
    paper_protocol: str = ""
    annotates: str = ""

    def resolved(self) -> "Comparison":
        if not self.ref:
            return self
        if self.ref not in REFERENCE:
            raise KeyError(f"unknown reference key {self.ref!r} (see reports/reference.py)")
        r = REFERENCE[self.ref]
        return Comparison(ours=self.ours, ref=self.ref, quantity=self.quantity or r.quantity,
                          paper=self.paper or r.text, source=self.source or f"{r.source} {r.tag}",
                          note=self.note, agrees=self.agrees, figure=self.figure,
                          paper_protocol=self.paper_protocol, annotates=self.annotates)

    def to_dict(self) -> dict:
        return asdict(self)


def comparison(row, figure: str = "") -> Comparison:
    """Normalise a row (a :class:`Comparison` or a dict with its keys) and fill it from the reference."""
    if isinstance(row, Comparison):
        c = row
    elif isinstance(row, dict):
        unknown = set(row) - set(Comparison.__dataclass_fields__)
        if unknown:
            raise ValueError(f"comparison row has unknown keys {sorted(unknown)}")
        if "ours" not in row:
            raise ValueError("comparison row needs an 'ours' value")
        c = Comparison(**{**row, "ours": _fmt(row["ours"])})
    else:
        raise TypeError(f"comparison rows are dicts or Comparison, not {type(row).__name__}")
    c = c.resolved()
    if figure and not c.figure:
        c = Comparison(**{**c.to_dict(), "figure": figure})
    return c


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def row(ref: str, ours, note: str = "", agrees: bool | None = None, **kw) -> dict:
    """Shorthand for a figure's ``paper_vs_ours``: ``row("rules.gen_fit.A", "R² 0.62", "cpu preset: ...", False)``."""
    return {"ref": ref, "ours": _fmt(ours), "note": note, "agrees": agrees, **kw}


def close(ours: float, key: str, tol: float) -> bool:
    """Whether ``ours`` is within ``tol`` (absolute) of the reference value ``key``."""
    value = REFERENCE[key].value
    if value is None:
        raise ValueError(f"reference {key!r} has no number to compare with")
    return abs(float(ours) - value) <= tol


# ---- every figure and table of both papers, and what reproduces it ------------------------------
@dataclass(frozen=True)
class PaperItem:
    """A figure or table of one of the papers. ``ours``: figure names known to reproduce it (figures can
    also declare ``Figure(reproduces=(item_id,))``); ``why_missing``: shown when nothing does."""

    id: str
    paper: str
    label: str
    what: str
    ours: tuple = ()
    why_missing: str = ""
    partial: str = ""  # what our figure does not cover, when it covers part of the item
    refs: tuple = field(default=())


PAPER_ITEMS: tuple[PaperItem, ...] = (
    PaperItem("fl:fig1", FL_ID, "Figure 1", "schematic of Theorem 1.1: speed and outcome of feature learning, "
              "diffusion vs classification", why_missing="a schematic with no data; its content is the fl:fig2 and "
              "fl:ratio figures"),
    PaperItem("fl:fig2", FL_ID, "Figure 2", "max_r⟨w_r, µ⟩ and max_r⟨w_r, ξ⟩ over training iterations, diffusion and "
              "classification, n·SNR² = 0.75 and 6.75", why_missing="made by reports/figures/fl_fig2.py (not drawn in this run)",
              refs=("fl.fig2.nsnr2", "fl.diffusion.balanced", "fl.growth")),
    PaperItem("fl:heatmap", FL_ID, "Figure A.1 / Theorem 3.1 (analogue)", "final signal/noise ratio over n × SNR for "
              "both objectives, with the n·SNR² = const curve (the appendix figure's exact content is unknown)",
              why_missing="made by reports/figures/fl_heatmap.py (not drawn in this run)", refs=("fl.classification.phase",)),
    PaperItem("fl:ratio", FL_ID, "Theorem 3.1", "signal/noise ratio against n·SNR² on log-log axes, fitted slope "
              "and the theory line", why_missing="made by reports/figures/fl_ratio.py (not drawn in this run)", refs=("fl.diffusion.ratio",)),
    PaperItem("fl:fig4", FL_ID, "Figure 4 (Noisy-MNIST, inferred)", "alignment with the digits vs the Gaussian patch, "
              "diffusion vs classification", why_missing="made by reports/figures/fl_digits.py (not drawn in this run); we use "
              "scikit-learn's 8x8 digits (no download) instead of MNIST", refs=("fl.noisy_mnist",)),
    PaperItem("fl:fig6", FL_ID, "Figure 6 (App. A.3)", "an extra high-SNR synthetic setting",
              why_missing="only its (mislabelled) caption is known; the n·SNR² = 6.75 panel of fl:fig2 covers the "
              "setting"),
    PaperItem("rules:fig1", RULES_ID, "Figure 1", "real text-to-image failures (SD-3.5, Flux.1: shadows, mirrors)",
              why_missing="out of scope: needs hosted text-to-image models and SynMirror; qualitative in the paper"),
    PaperItem("rules:tasks", RULES_ID, "Task illustrations (Sec. 3)", "Tasks A-D: training images and their rules",
              ours=("data_gallery", "ddpm_gallery")),
    PaperItem("rules:fig4", RULES_ID, "Figure 4", "fine rule: rule_x vs rule_y with OLS fit and R², training data "
              "and generated images per task", ours=("data_fits", "ddpm_fig4"),
              refs=tuple(f"rules.{k}.{t}" for k in ("train_fit", "gen_fit") for t in "ABCD")),
    PaperItem("rules:table1", RULES_ID, "Table 1", "coarse-rule violations per task and model", ours=("ddpm_table1",),
              refs=("rules.table1",) + tuple(f"rules.coarse.{t}" for t in "ABCD")),
    PaperItem("rules:conform", RULES_ID, "Rule-conforming samples (`discrete_samples.pdf`)", "% of samples whose "
              "rule_y falls in the 0.05 bin of g(rule_x), training vs generated",
              why_missing="made by reports/figures/ddpm_memory.py (not drawn in this run)",
              refs=tuple(f"rules.conform_{k}.{t}" for k in ("train", "gen") for t in "ABCD")),
    PaperItem("rules:fig6", RULES_ID, "Figure 6", "distribution of ψ_t(x_t) over t for a DSM-trained two-layer "
              "network (d = 100, m = 20) against α/β²", why_missing="made by reports/figures/rules_fig6.py (not drawn in this run)",
              refs=("rules.fig6.settings",)),
    PaperItem("rules:thm45", RULES_ID, "Theorem 4.5", "constant rule-conforming error of DSM-trained networks",
              ours=("theory_bounds", "theory_score_check"), partial="our own reconstruction (L_t), not the paper's "
              "theorem, whose text was unavailable", refs=("rules.theory.constant_error",)),
    PaperItem("rules:fig9", RULES_ID, "Figure 9", "examples of coarse violations (Task A)",
              why_missing="made by reports/figures/ddpm_violations.py (not drawn in this run)"),
    PaperItem("rules:fig10", RULES_ID, "Figure 10", "examples of fine violations (right layout, wrong ratio)",
              why_missing="made by reports/figures/ddpm_violations.py (not drawn in this run)"),
    PaperItem("rules:fig13", RULES_ID, "Figure 13", "model size: U-Net (14M) vs DiT-S/2, DiT-B/2 (130M)",
              ours=("ddpm_table1",), partial="rows appear per model once GPU runs are committed under "
              "reports/results/ddpm_paper/", refs=("rules.r2_below_09",)),
    PaperItem("rules:fig14", RULES_ID, "Figure 14", "data scale: 4K vs 40K training images",
              why_missing="no data-scale runs yet (GPU work)"),
    PaperItem("rules:models", RULES_ID, "Task A model comparison", "MLP denoiser and AR diffusion vs the U-Net",
              why_missing="AR diffusion is not implemented; MLP rows appear in ddpm_table1 once its GPU run is "
              "committed", refs=("rules.mlp_fit.A", "rules.ar_fit.A", "rules.ar_vs_ddpm")),
    PaperItem("rules:clf", RULES_ID, "Classifier accuracy (`test_acc.pdf`)", "test accuracy of MLP, ResNet-8 and "
              "conv classifiers on the 3-class contrastive data", ours=("mitigation_classifiers",),
              why_missing="made by reports/figures/mitigation_tables.py (not drawn in this run)",
              refs=tuple(f"rules.clf_acc.{a}.{t}" for a in ("mlp", "resnet8", "conv") for t in "ABCD")),
    PaperItem("rules:guidance", RULES_ID, "Guidance and filtering (Sec. 5.2)", "fine rule with classifier guidance "
              "(constant and piecewise schedules) and with pixel-space filtering", ours=("mitigation_guidance",),
              why_missing="made by reports/figures/mitigation_tables.py (not drawn in this run)", refs=("rules.guidance", "rules.guidance_gain")),
    PaperItem("rules:memorise", RULES_ID, "Memorisation (`highquality_gen.pdf`)", "nearest-neighbour distance of "
              "rule-exact samples to the training set against a threshold", why_missing="made by reports/figures/ddpm_memory.py (not drawn in this run)",
              refs=("rules.memorise.A", "rules.memorise13.A", "rules.highquality")),
    PaperItem("rules:clip", RULES_ID, "CLIP + UMAP of contrastive classes", "the classes are nearly inseparable "
              "in CLIP space", why_missing="out of scope: needs CLIP weights (no downloads here)"),
)
