"""The command layer: one function per command, argument parsing only, no logic."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from svpgen.device import DEVICES
from svpgen.diffusion.config import NETWORKS, OBJECTIVES, SAMPLERS, SYMMETRY_MODES
from svpgen.errors import SvpgenError
from svpgen.presets import NAMES as PRESET_NAMES


class _Group(click.Group):
    """Turn SvpgenError (bad input) into one clear line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SvpgenError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)


def _existing(kind: str = "path"):
    return click.Path(exists=True, path_type=Path, dir_okay=kind != "file", file_okay=kind != "dir")


def _preset_option(default: str = "quick"):
    return click.option(
        "--preset", type=click.Choice(PRESET_NAMES), default=default, show_default=True
    )


def _device_option():
    return click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)


def _minority_option():
    return click.option(
        "--minority",
        help="the minority classes, comma-separated (default: silicone_oil and air_bubble where "
        "present, else every class but the most frequent)",
    )


def _prevalence(text: str | None) -> tuple[float, ...] | dict[str, float] | None:
    """``--prevalence``: ``1000:1:1`` (in class order) or ``protein=1000,silicone_oil=1``."""
    if not text:
        return None
    from svpgen.data.classes import class_label
    from svpgen.options import parse_mapping

    if "=" in text:
        example = "protein=1000,silicone_oil=1"
        return {class_label(k): v for k, v in parse_mapping(text, "--prevalence", example).items()}
    try:
        return tuple(float(v) for v in text.split(":"))
    except ValueError:
        raise SvpgenError(f"--prevalence {text!r}: expected e.g. 1000:1:1") from None


def _class_names(text: str | None) -> tuple[str, ...] | None:
    """A comma-separated class list, normalised like a store's labels."""
    if not text:
        return None
    from svpgen.data.classes import class_label

    return tuple(class_label(name) for name in text.split(",") if name.strip())


@click.group(cls=_Group)
@click.version_option(package_name="svpgen")
def main() -> None:
    """svpgen: sub-visible particle classification with diffusion-model synthesis."""


def _write_mode(append: bool, overwrite: bool) -> str:
    if append and overwrite:
        raise SvpgenError("choose one of --append and --overwrite")
    return "append" if append else "overwrite" if overwrite else "create"


@main.command("import")
@click.argument("src", type=_existing())
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "folder", "collage", "flowcam", "mfi"]),
    default="auto",
    show_default=True,
)
@click.option(
    "--fit",
    type=click.Choice(["crop", "pad"]),
    default="crop",
    show_default=True,
    help="centre-crop (paper) or pad with the median border value",
)
@click.option(
    "--drop-edge", is_flag=True, help="MFI: drop particles touching the frame edge (default: keep)"
)
@click.option("--label", help="give every particle this class (a single-class sample's run)")
@click.option(
    "--class-map",
    type=_existing("file"),
    help="CSV of 'lab name,class' rows: rename or merge the lab's classes at import",
)
@click.option("--pixel-um", type=float, help="µm per pixel of images that carry none (collages)")
@click.option("--append", is_flag=True, help="add to an existing store")
@click.option("--overwrite", is_flag=True, help="replace an existing store")
def import_cmd(
    src: Path,
    out: Path,
    fmt: str,
    fit: str,
    drop_edge: bool,
    label: str | None,
    class_map: Path | None,
    pixel_um: float | None,
    append: bool,
    overwrite: bool,
) -> None:
    """Import a class-folder tree, a FlowCam run/library/CSV/collage or an MFI export."""
    from svpgen.data.classes import read_class_map
    from svpgen.data.importers import import_source
    from svpgen.data.store import command_line

    store, result = import_source(
        src,
        out,
        mode=_write_mode(append, overwrite),
        command=command_line(),
        fmt=fmt,
        fit=fit,
        drop_edge=drop_edge,
        label=label,
        class_map=read_class_map(class_map) if class_map else None,
        pixel_um=pixel_um,
    )
    click.echo(
        f"imported {len(result.particles)} particles ({result.format}) into {out} "
        f"(store now holds {len(store)})"
    )
    for name, target in sorted(result.class_labels.items(), key=lambda kv: (kv[1], kv[0])):
        click.echo(f"  class {name!r} → {target}")
    for entry in result.unmatched_map_entries:
        click.echo(f"  class map entry {entry!r} matched no class of the import")
    if len(result.measurements):
        click.echo(
            f"  no image for {len(result.measurements)} instrument rows: kept as measurements "
            f"only ({out / 'measurements.parquet'}), for the morphology baselines"
        )
    for reason, n in result.skip_counts().items():
        click.echo(f"  skipped {n:>6}  {reason}")
    click.echo(f"report: {out / 'import_report.csv'}")


@main.command("import-model")
@click.argument("file", type=_existing("file"))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--kind", type=click.Choice(["diffusion", "classifier"]), required=True)
@click.option("--label", help="diffusion: the class the model generates, e.g. air_bubble")
@click.option(
    "--mean",
    default="0.485,0.456,0.406",
    show_default=True,
    help="classifier input mean per channel (the authors' is not published)",
)
@click.option(
    "--std",
    default="0.229,0.224,0.225",
    show_default=True,
    help="classifier input std per channel (the authors' is not published)",
)
def import_model(file: Path, out: Path, kind: str, label: str | None, mean: str, std: str) -> None:
    """Convert the paper authors' released .pth (diffusion U-Net or ResNet) into an svpgen model."""
    from svpgen.options import parse_floats

    if kind == "diffusion":
        from svpgen.data.classes import UNKNOWN, canonical_label
        from svpgen.diffusion.authors import import_authors_diffusion

        canon = canonical_label(label or "")
        if canon in (None, UNKNOWN):
            raise SvpgenError(
                f"--label {label!r}: a diffusion model needs the particle class it generates "
                "(e.g. air_bubble)"
            )
        g = import_authors_diffusion(file, out, canon)
        click.echo(
            f"imported {file} → {out}: {canon} U-Net dim {g.config.unet.dim} mults "
            f"{g.config.unet.dim_mults}, "
            f"sampler ddpm over T = {g.config.schedule.timesteps}, no clipping, truncating uint8 "
            "conversion"
        )
    else:
        from svpgen.classify.authors import import_authors_classifier

        clf = import_authors_classifier(
            file, out, parse_floats(mean, "--mean"), parse_floats(std, "--std")
        )
        click.echo(
            f"imported {file} → {out}: {clf.config.arch}, {clf.config.in_chans} input channels "
            "(gray repeated), "
            f"classes {', '.join(clf.classes)}, input mean {clf.config.input_mean} std "
            f"{clf.config.input_std} (assumed)"
        )


@main.command()
@click.argument("store", type=_existing("dir"))
def info(store: Path) -> None:
    """Counts per label × source, per-class sizes and µm/px, image size and provenance."""
    from svpgen.data.store import ParticleStore, describe

    click.echo(describe(ParticleStore(store)))


@main.command()
@click.argument("store", type=_existing("dir"))
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--fractions",
    default="train=0.8,test=0.2",
    show_default=True,
    help="name=fraction,… (normalised)",
)
@click.option("--seed", default=0, show_default=True)
def split(store: Path, out: Path, fractions: str, seed: int) -> None:
    """Split a store into disjoint parts (by image hash) under OUT/<name>."""
    from svpgen.data.splits import split_store
    from svpgen.options import parse_mapping

    parts = parse_mapping(fractions, "--fractions", "train=0.8,test=0.2")
    for name, part in split_store(store, out, parts, seed).items():
        click.echo(f"{name:>10}: {len(part)} particles → {part.path}")


@main.command("check-leakage")
@click.argument("store_a", type=_existing("dir"))
@click.argument("store_b", type=_existing("dir"))
def check_leakage(store_a: Path, store_b: Path) -> None:
    """Fail if two stores share any image (compared by sha256)."""
    from svpgen.data.splits import check_disjoint
    from svpgen.data.store import ParticleStore

    a, b = ParticleStore(store_a), ParticleStore(store_b)
    check_disjoint(a.table, b.table, str(store_a), str(store_b))
    click.echo(f"ok: {store_a} ({len(a)}) and {store_b} ({len(b)}) share no image")


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--protein", default=1000, show_default=True, help="number of protein aggregates")
@click.option(
    "--silicone-oil", default=100, show_default=True, help="number of silicone oil droplets"
)
@click.option("--air-bubble", default=100, show_default=True, help="number of air bubbles")
@click.option("--glass", default=0, show_default=True, help="optional class: glass lamellae")
@click.option("--fiber", default=0, show_default=True, help="optional class: fibres")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["store", "folder", "flowcam"]),
    default="store",
    show_default=True,
)
@click.option(
    "--label-noise",
    default=0.03,
    show_default=True,
    help="symmetric label-noise rate (doubled below 8 µm)",
)
@click.option("--pixel-um", default=0.55, show_default=True, help="native µm per pixel")
@click.option(
    "--workers", default=None, type=int, help="worker processes (default: CPU count, max 4)"
)
@click.option(
    "--preview", type=click.Path(path_type=Path), help="also write a labelled sample grid PNG"
)
def simulate(
    out,
    protein,
    silicone_oil,
    air_bubble,
    glass,
    fiber,
    seed,
    fmt,
    label_noise,
    pixel_um,
    workers,
    preview,
) -> None:
    """Render realistic FIM particle crops (the embedded default dataset)."""
    from svpgen.simulate.run import run_simulate

    counts = {
        "protein": protein,
        "silicone_oil": silicone_oil,
        "air_bubble": air_bubble,
        "glass": glass,
        "fiber": fiber,
    }
    click.echo(
        run_simulate(
            out,
            counts,
            seed=seed,
            fmt=fmt,
            label_noise=label_noise,
            pixel_um=pixel_um,
            workers=workers,
            preview=preview,
        )
    )


@main.command("train-diffusion")
@click.argument("store", type=_existing("dir"))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--label", required=True, help="the class to model, e.g. silicone_oil")
@_preset_option()
@click.option("--epochs", type=int, help="override the preset's epochs")
@click.option("--batch-size", type=int)
@click.option("--lr", type=float)
@click.option("--max-images", type=int, help="training images used (paper: 1000)")
@click.option("--loss", type=click.Choice(["l1", "mse"]), help="paper: l1")
@click.option("--timesteps", type=int, help="T (paper: 1000; its released code: 500)")
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    help="what the network learns (paper: epsilon; quick: edm)",
)
@click.option("--min-snr-gamma", type=float, help="epsilon/v: min-SNR-γ loss weighting (e.g. 5)")
@click.option(
    "--patch",
    type=click.Choice(["1", "2", "4"]),
    help="pixel-unshuffle patch size of the U-Net (paper: 1)",
)
@click.option(
    "--network",
    type=click.Choice(NETWORKS),
    help="the paper's U-Net, or pca-mlp: an MLP on the images' principal components (edm, mse)",
)
@click.option("--latent-components", type=int, help="pca-mlp: principal components kept")
@click.option(
    "--latent-mixture",
    type=int,
    help="pca-mlp: Gaussians in the latent prior the MLP starts from (quick: 64; 1: one Gaussian)",
)
@click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    help="the sampler recorded as the model's recommendation",
)
@click.option("--sampler-steps", type=int)
@click.option(
    "--symmetries",
    type=click.Choice(SYMMETRY_MODES),
    help="augmentation: the square's 8 symmetries (paper), those the class's images keep "
    "(auto; quick), or none",
)
@click.option(
    "--init-from",
    type=_existing("dir"),
    help="fine-tune: start from this trained model's weights (same architecture)",
)
@click.option("--checkpoint-every", type=int, help="epochs between checkpoints")
@click.option(
    "--fid/--no-fid",
    default=True,
    show_default=True,
    help="FID/KID at the preset's epochs (needs a particle encoder)",
)
@click.option(
    "--encoder",
    type=click.Path(path_type=Path),
    help="particle-encoder model dir for FID (default: none → skipped)",
)
@click.option("--seed", type=int)
@click.option("--resume", is_flag=True, help="continue from OUT/training_state.pt")
@_device_option()
def train_diffusion_cmd(
    store,
    out,
    label,
    preset,
    epochs,
    batch_size,
    lr,
    max_images,
    loss,
    timesteps,
    objective,
    min_snr_gamma,
    patch,
    network,
    latent_components,
    latent_mixture,
    sampler,
    sampler_steps,
    symmetries,
    init_from,
    checkpoint_every,
    fid,
    encoder,
    seed,
    resume,
    device,
):
    """Train one class's diffusion model on its real images (paper preset: the paper's DDPM)."""
    from svpgen.diffusion.run import run_train_diffusion

    def fid_hook_factory(canon_label, cfg):
        from svpgen.diffusion.train import load_training_images
        from svpgen.evaluate.audit import fid_hook
        from svpgen.evaluate.features import EncoderFeatures

        real = load_training_images(store, canon_label, cfg.max_images, cfg.seed)
        return fid_hook(real, EncoderFeatures(encoder, device=device), cfg.fid_samples)

    click.echo(
        run_train_diffusion(
            store,
            out,
            label,
            preset,
            resume=resume,
            device=device,
            eval_hook_factory=fid_hook_factory if (fid and encoder) else None,
            init_from=init_from,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            max_images=max_images,
            loss=loss,
            timesteps=timesteps,
            objective=objective,
            min_snr_gamma=min_snr_gamma,
            patch=int(patch) if patch else None,
            network=network,
            latent_components=latent_components,
            latent_mixture=latent_mixture,
            sampler=sampler,
            sampler_steps=sampler_steps,
            symmetries=symmetries,
            checkpoint_every=checkpoint_every,
            seed=seed,
        )
    )


@main.command()
@click.argument("model", type=_existing("dir"))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--n", "n", type=int, required=True, help="number of images")
@click.option(
    "--sampler",
    type=click.Choice(SAMPLERS),
    help="default: the model's recommended sampler (its config.json)",
)
@click.option(
    "--steps",
    type=int,
    help="sampling steps (default: the model's; ddpm all T, ddim 50, dpm/edm 20, edm-euler 40)",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@_device_option()
@click.option(
    "--trajectory",
    type=click.Path(path_type=Path),
    help="save the denoising strip PNG (paper Fig. 2)",
)
@click.option("--grid", type=click.Path(path_type=Path), help="save a sample grid PNG")
@click.option("--append", is_flag=True, help="add to an existing store")
@click.option(
    "--filter-against",
    type=_existing("dir"),
    help="drop near-copies of training images and out-of-range morphology (vs this store's "
    "real images)",
)
def generate(
    model,
    out,
    n,
    sampler,
    steps,
    seed,
    batch_size,
    device,
    trajectory,
    grid,
    append,
    filter_against,
):
    """Sample a trained diffusion model into a store (source=generated)."""
    from svpgen.data.store import command_line
    from svpgen.diffusion.generate import generate_to_store
    from svpgen.diffusion.generator import Generator

    if n < 1:
        raise SvpgenError(f"--n must be ≥ 1 (got {n})")
    generator = Generator.from_pretrained(model, device)
    keep = None
    if filter_against:
        from svpgen.evaluate.audit import generation_filter

        keep = generation_filter(generator, filter_against)
    store, seconds = generate_to_store(
        generator,
        out,
        n,
        sampler=sampler,
        steps=steps,
        seed=seed,
        batch_size=batch_size,
        trajectory_png=trajectory,
        grid_png=grid,
        mode="append" if append else "create",
        command=command_line(),
        keep=keep,
    )
    record = store.provenance[-1]
    click.echo(
        f"generated {n} images with {record['sampler']} in {seconds:.1f} s ({n / seconds:.2f} "
        "img/s), "
        f"{record.get('filtered_out', 0)} filtered out → {out} (store holds {len(store)})"
    )
    for name, path in (("trajectory", trajectory), ("grid", grid)):
        if path:
            click.echo(f"{name}: {path}")


@main.command("train-classifier")
@click.argument("store", type=_existing("dir"))
@click.argument("out", type=click.Path(path_type=Path))
@_preset_option()
@click.option("--arch", type=click.Choice(["resnet18", "resnet50"]))
@click.option(
    "--stem", type=click.Choice(["standard", "small"]), help="standard (paper) or small-image stem"
)
@click.option(
    "--pretrained", type=click.Path(exists=True, dir_okay=False), help="local timm weights file"
)
@click.option("--optimizer", type=click.Choice(["adam", "adamw"]))
@click.option("--lr", type=float)
@click.option("--weight-decay", type=float)
@click.option("--batch-size", type=int)
@click.option("--epochs", type=int)
@click.option(
    "--patience", type=int, help="early-stopping patience (epochs without tuning improvement)"
)
@click.option(
    "--imbalance",
    type=click.Choice(["none", "weighted", "oversample", "logit-adjust"]),
    help="paper: none",
)
@click.option(
    "--deploy-prior",
    help="logit-adjust target prevalence, e.g. protein=1000,silicone_oil=1 "
    "(default: 1000 per majority class, 1 per --minority class)",
)
@_minority_option()
@click.option(
    "--tune",
    "tune_store",
    type=_existing("dir"),
    help="tuning store (default: a hash-disjoint 15%% of STORE)",
)
@click.option("--seed", type=int)
@click.option("--resume", is_flag=True)
@_device_option()
def train_classifier_cmd(
    store,
    out,
    preset,
    arch,
    stem,
    pretrained,
    optimizer,
    lr,
    weight_decay,
    batch_size,
    epochs,
    patience,
    imbalance,
    deploy_prior,
    minority,
    tune_store,
    seed,
    resume,
    device,
):
    """Train a ResNet particle classifier (early stopping on a tuning split)."""
    from svpgen.classify.config import ClassifierConfig
    from svpgen.classify.run import run_train_classifier
    from svpgen.device import resolve_device
    from svpgen.options import parse_mapping, with_overrides

    prior = (
        parse_mapping(deploy_prior, "--deploy-prior", "protein=1000,silicone_oil=1,air_bubble=1")
        if deploy_prior
        else None
    )
    cfg = with_overrides(
        ClassifierConfig.from_preset(preset),
        arch=arch,
        stem=stem,
        pretrained=pretrained,
        optimizer=optimizer,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        epochs=epochs,
        patience=patience,
        imbalance=imbalance,
        seed=seed,
    )
    click.echo(
        run_train_classifier(
            store,
            out,
            cfg,
            tune_path=tune_store,
            resume=resume,
            device=resolve_device(device),
            deploy_prior=prior,
            minority=_class_names(minority),
        )
    )


@main.command("train-baseline")
@click.argument("store", type=_existing("dir"))
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--kind",
    type=click.Choice(["rules", "forest", "boosting"]),
    default="forest",
    show_default=True,
    help="rule filters on the morphology parameters, a random forest, or gradient boosting",
)
@click.option(
    "--features",
    type=click.Choice(["auto", "computed", "instrument"]),
    default="auto",
    show_default=True,
    help="the export's own parameter columns where every particle has them (auto), always "
    "computed from the crops, or the export's columns only (rows without images count too)",
)
@click.option(
    "--deploy-prior",
    help="prevalence the rules are fitted for, e.g. protein=1000,silicone_oil=1 "
    "(default: 1000 per majority class, 1 per --minority class)",
)
@_minority_option()
@click.option("--seed", default=0, show_default=True)
def train_baseline_cmd(store, out, kind, features, deploy_prior, minority, seed):
    """Fit the field's baseline on a store's labelled particles: rule filters or a random
    forest on the instrument's morphology parameters (aspect ratio, intensity, ESD…)."""
    from svpgen.classify.run import run_train_baseline

    prior = _prevalence(deploy_prior)
    if isinstance(prior, tuple):
        raise SvpgenError(
            "--deploy-prior takes class=value pairs, e.g. protein=1000,silicone_oil=1"
        )
    click.echo(
        run_train_baseline(
            store,
            out,
            kind,
            features=features,
            deploy_prior=prior,
            minority=_class_names(minority),
            seed=seed,
        )
    )


@main.command()
@click.argument("model", type=_existing())
@click.argument("input_path", metavar="INPUT", type=_existing())
@click.option("--out", type=click.Path(path_type=Path), required=True, help="predictions CSV")
@click.option("--batch-size", default=512, show_default=True)
@click.option(
    "--int8",
    is_flag=True,
    help="int8 CPU inference, calibrated on 512 of the input images (check with bench_classify)",
)
@click.option(
    "--bf16",
    is_flag=True,
    help="bf16 autocast inference: 1.6–1.8× fp32 on an AMD Zen 4, slower on an Intel Xeon "
    "measured (check with bench_classify)",
)
@click.option(
    "--onnx",
    is_flag=True,
    help="MODEL is an exported .onnx file: run it on onnxruntime (torch is not loaded)",
)
@click.option(
    "--cla",
    type=click.Path(path_type=Path),
    help="also write a VisualSpreadsheet classification file (.cla) of the run",
)
@click.option(
    "--min-confidence",
    help="below this the particle is 'unclassified' in the .cla: 0.8, or protein=0.9,…",
)
@_device_option()
def classify(model, input_path, out, batch_size, int8, bf16, onnx, cla, min_confidence, device):
    """Classify a store, a folder of images or an instrument export."""
    from svpgen.classify.predict import classify_input, write_classification
    from svpgen.data.predictions import parse_min_confidence

    if onnx and Path(model).suffix.lower() != ".onnx":
        raise SvpgenError(f"--onnx: {model} is not an .onnx file (svpgen export-onnx writes one)")
    if int8 and bf16:
        raise SvpgenError("--int8 and --bf16: choose one precision")
    threshold = parse_min_confidence(min_confidence)
    precision = "int8" if int8 else "bf16" if bf16 else "fp32"
    pred, kind, seconds = classify_input(
        model, input_path, out, batch_size=batch_size, precision=precision, device=device
    )
    click.echo(f"classified {len(pred):,} particles ({kind}) in {seconds:.1f} s → {out}")
    for label, n in pred["predicted"].value_counts().items():
        click.echo(f"  {label:>13}: {n:,}")
    if cla:
        classes = [c.removeprefix("p_") for c in pred.columns if c.startswith("p_")]
        written = write_classification(
            pred, cla, classes, name=f"svpgen {Path(model).name}", min_confidence=threshold
        )
        click.echo(f"classification: {cla} ({', '.join(f'{c} {n}' for c, n in written.items())})")


@main.command("export-onnx")
@click.argument("model", type=_existing("dir"))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--int8", is_flag=True, help="int8 by onnxruntime's static quantization")
@click.option(
    "--calibration", type=_existing(), help="--int8: a store or export of unlabelled crops"
)
def export_onnx_cmd(model, out, int8, calibration):
    """Export a CNN classifier as one ONNX file: uint8 N×64×64 crops in, probabilities out."""
    from svpgen.classify.onnx import export_onnx

    images = None
    if calibration:
        from svpgen.classify.predict import load_input

        images = load_input(calibration)[0]
    export_onnx(model, out, int8=int8, calibration=images)
    click.echo(f"exported {model} → {out}{' (int8)' if int8 else ''}")


@main.command()
@click.argument("model", type=_existing("dir"))
@click.argument("store", type=_existing("dir"))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="report directory")
@click.option(
    "--prevalence",
    help="also report metrics reweighted to this deployment prevalence, e.g. 1000:1:1",
)
@click.option(
    "--truth-column",
    default="label",
    show_default=True,
    help="column with the true class (simulated stores: true_label = before label noise)",
)
def evaluate(model, store, out, prevalence, truth_column):
    """Metrics (per-class precision and recall, AUPRC…), confusion matrices, PR curves."""
    from svpgen.evaluate.evaluation import evaluate_model

    evaluate_model(model, store, out, prevalence, truth_column=truth_column)
    click.echo((out / "metrics.md").read_text())
    click.echo(
        f"written: {out}/metrics.json, metrics.md, predictions.csv, confusion_*.png, "
        "pr_curves.png, misclassified.png"
    )


@main.command("train-encoder")
@click.argument("store", type=_existing("dir"))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--epochs", default=5, show_default=True)
@click.option("--seed", default=0, show_default=True)
@_device_option()
def train_encoder(store, out, epochs, seed, device):
    """Train the particle encoder (a ResNet-18 on real images of every class, balanced by
    oversampling) whose penultimate features feed FID/KID/precision/recall."""
    from svpgen.classify.run import labelled, split_train_tune
    from svpgen.data.store import ParticleStore
    from svpgen.device import resolve_device
    from svpgen.evaluate.encoder import train_particle_encoder

    train, tune = split_train_tune(labelled(ParticleStore(store), real_only=True), 0.15, seed)
    res = train_particle_encoder(
        train, tune, out, epochs=epochs, seed=seed, device=resolve_device(device)
    )
    click.echo(
        f"particle encoder: {len(train)} real images, best epoch {res.best_epoch} of "
        f"{res.epochs_run}, "
        f"tuning macro AUPRC {res.best_score:.3f} → {out}"
    )


@main.command()
@click.argument("model", type=_existing("dir"))
@click.argument("real_store", type=_existing("dir"))
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option(
    "--features",
    type=click.Choice(["encoder", "pixels", "timm", "inception"]),
    default="encoder",
    show_default=True,
)
@click.option(
    "--encoder", type=_existing("dir"), help="particle-encoder model dir (svpgen train-encoder)"
)
@click.option(
    "--feature-arch",
    help="timm architecture for --features timm (e.g. resnet50 for SwAV, vit_small_patch14_dinov2)",
)
@click.option(
    "--feature-weights",
    type=click.Path(exists=True, dir_okay=False),
    help="local weights file for timm/inception features",
)
@click.option(
    "--n",
    "n",
    default=200,
    show_default=True,
    help="generated images (FID/KID/PR use min(n, held-out real))",
)
@click.option(
    "--sampler", type=click.Choice(SAMPLERS), help="default: the model's recommended sampler"
)
@click.option("--steps", type=int)
@click.option(
    "--generated", type=_existing("dir"), help="audit this generated store instead of sampling"
)
@click.option("--bootstrap", default=30, show_default=True)
@click.option("--seed", default=0, show_default=True)
@_device_option()
def audit(
    model,
    real_store,
    out,
    features,
    encoder,
    feature_arch,
    feature_weights,
    n,
    sampler,
    steps,
    generated,
    bootstrap,
    seed,
    device,
):
    """Is a generated particle good enough? FID/KID (+CI), precision/recall, memorization,
    morphology."""
    from svpgen.diffusion.generator import Generator
    from svpgen.evaluate.audit import run_audit
    from svpgen.evaluate.features import make_extractor

    extractor = make_extractor(features, encoder, feature_weights, feature_arch)
    run_audit(
        Generator.from_pretrained(model, device),
        real_store,
        out,
        extractor,
        n=n,
        sampler=sampler,
        steps=steps,
        seed=seed,
        generated_store=generated,
        bootstrap=bootstrap,
    )
    click.echo((out / "audit.md").read_text())
    click.echo(
        f"written: {out}/audit.json, audit.md, real_vs_generated.png, closest_pairs.png, "
        "morphology.png"
    )


@main.command()
@_preset_option()
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON of study settings overriding the preset",
)
@click.option(
    "--data", type=_existing("dir"), help="a labelled store to use instead of simulated data"
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/study"), show_default=True
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="grid runner (ray: local cluster or RAY_ADDRESS)",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    help="training jobs at a time: Ray trials, or on this CPU the grid trials and per-class "
    "diffusion models (1 torch thread each on 2 cores)",
)
@_minority_option()
@click.option(
    "--prevalence",
    help="deployment prevalence per class: 1000:1:1 in the study's class order, or "
    "protein=1000,silicone_oil=1 (default: 1000 per majority class, 1 per minority class)",
)
@_device_option()
def study(preset, config_file, data, out, backend, workers, minority, prevalence, device):
    """The whole study (simulate → diffusion → generate → grid → evaluate → report), resumable."""
    from svpgen.device import resolve_device
    from svpgen.options import with_overrides
    from svpgen.study.config import load_study_config
    from svpgen.study.runner import run_study

    cfg = with_overrides(
        load_study_config(preset, config_file),
        minority=_class_names(minority),
        prevalence=_prevalence(prevalence),
    )
    result = run_study(
        cfg,
        out,
        data,
        device=resolve_device(device),
        backend=backend,
        workers=workers,
        echo=click.echo,
    )
    click.echo(_study_summary(result))


def _study_summary(result) -> str:
    """The answer, Table 2 with its intervals, the time the stages took, where the report is."""
    from svpgen.markdown import markdown_table
    from svpgen.study.compare import with_intervals

    lines = ["", "The answer:", *(f"- {a}" for a in result.report.answers)]
    if result.table2 is not None:
        lines += [
            "",
            "Table 2 (95% intervals):",
            markdown_table(with_intervals(result.table2.table)),
        ]
    total = sum(r.get("seconds", 0) for r in result.records.values())
    lines += ["", f"study finished; this run's stages took {total / 60:.1f} min."]
    return "\n".join(lines + [f"Report: {result.report.html}"])


@main.command()
@click.argument("study_dir", type=_existing("dir"))
def report(study_dir):
    """(Re)write the Markdown/CSV/HTML report of a study directory."""
    from svpgen.study.report import write_report

    written = write_report(study_dir)
    click.echo(
        f"report: {written.html} ({written.figures} figures), {written.markdown}, {written.csv}"
    )


@main.command()
@click.argument("predictions", type=_existing("file"))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="report directory")
@click.option(
    "--export",
    "export_dir",
    type=_existing("dir"),
    help="the instrument export (reads the FlowCam run summary)",
)
@click.option("--fluid-volume-ml", type=float, help="volume imaged (default: from the run summary)")
@click.option("--dilution", default=1.0, show_default=True)
@click.option(
    "--fill-volume-ml",
    type=float,
    help="container fill volume: enables per-container counts and pass/fail",
)
@click.option(
    "--container-ml",
    type=float,
    help="nominal container size (≤100 mL vs >100 mL limits; default: fill volume)",
)
@click.option(
    "--method",
    type=click.Choice(["light-obscuration", "microscopic"]),
    default="light-obscuration",
    show_default=True,
)
@click.option(
    "--min-confidence",
    help="below this the particle is 'unclassified': 0.8, or protein=0.9,silicone_oil=0.7,…",
)
@click.option("--large/--no-large", default=False, help="also report ≥50 and ≥100 µm")
def counts(
    predictions,
    out,
    export_dir,
    fluid_volume_ml,
    dilution,
    fill_volume_ml,
    container_ml,
    method,
    min_confidence,
    large,
):
    """Particle counts per mL / container by class and size, with USP <788> verdicts."""
    from svpgen.qc.counts import counts_report

    res = counts_report(
        predictions,
        out,
        export_dir=export_dir,
        fluid_volume_ml=fluid_volume_ml,
        dilution=dilution,
        fill_volume_ml=fill_volume_ml,
        container_ml=container_ml,
        method=method,
        min_confidence=min_confidence,
        large=large,
    )
    click.echo(res["markdown"])
    click.echo(
        f"written: {out}/counts.csv, compliance.csv, counts.md, counts.html, size_distribution.png"
    )


if __name__ == "__main__":
    main()
