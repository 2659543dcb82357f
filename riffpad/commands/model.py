"""``riffpad model``: fetch, list, inspect, remove and import models ahead of playing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from riffpad import DEFAULT_MODEL

# Room left over after a pull: a full disk breaks more than the download.
DISK_MARGIN = 200_000_000


def _hub():
    from riffpad.engine import hub

    return hub


def _existing(path: Path) -> Path:
    """``path`` or its nearest parent that exists (what will hold it once created)."""
    return next((p for p in [path, *path.parents] if p.exists()), Path("/"))


def free_bytes(path: Path) -> int:
    """Free space on the file system that holds ``path``."""
    return shutil.disk_usage(_existing(path)).free


def _cached_size(plan, cache: Path) -> int:
    """Bytes of the plan already in the cache (a stopped pull keeps finished files)."""
    repo_dir = cache / f"models--{plan.repo.replace('/', '--')}" / "snapshots" / plan.commit
    return sum((plan.files[n] or 0) for n in plan.files if (repo_dir / n).is_file())


@click.group()
def model() -> None:
    """Fetch, list, inspect and remove models (Hugging Face cache and riffpad's own)."""


@model.command()
@click.argument("repo", default=DEFAULT_MODEL)
@click.option("--revision", metavar="REV", help="Branch, tag, commit or refs/pr/N.")
@click.option("--no-verify", is_flag=True, help="Skip loading the model after the download.")
def pull(repo: str, revision: str | None, no_verify: bool) -> None:
    """Download REPO (default: Riffusion's model) to play offline later."""
    hub = _hub()
    if not hub.is_repo_id(repo):
        raise click.BadParameter(f"{repo!r} is not a Hugging Face repo id (owner/name)")
    try:
        plan = hub.plan(repo, revision)
    except hub.HubError as exc:
        raise click.ClickException(f"cannot pull {repo}: {exc}") from None
    if plan.missing:
        raise click.ClickException(
            f"{repo} is not a model riffpad can play: {'; '.join(plan.missing)}"
        )
    cache = hub.hub_cache()
    have = _cached_size(plan, cache)
    need = plan.size - have
    click.echo(
        f"{repo} @ {plan.commit[:12]}: {len(plan.files)} files, {hub.human(plan.size)}"
        + (f" ({hub.human(have)} already here)" if have else "")
        + f" -> {cache}"
    )
    # .bin weights are also written once as safetensors in riffpad's cache.
    converts = sum(
        s or 0 for n, s in plan.files.items() if n.endswith(".bin") and n.count("/") == 1
    )
    from riffpad.engine.weights import cache_root

    same_fs = _existing(cache).stat().st_dev == _existing(cache_root()).stat().st_dev
    checks = [(cache, need + (converts if same_fs else 0))]
    if converts and not same_fs:
        checks.append((cache_root(), converts))
    for where, size in checks:
        free = free_bytes(where)
        if size + DISK_MARGIN > free:
            raise click.ClickException(
                f"not enough free disk space: {hub.human(size)} to write under {where}, "
                f"{hub.human(free)} free (riffpad keeps {hub.human(DISK_MARGIN)} spare). "
                "Free some space, or point HF_HOME at a bigger disk."
            )
    folder = _download(hub, plan)
    click.echo(f"downloaded to {folder}")
    if not no_verify:
        _verify(folder, repo)


def _download(hub, plan) -> Path:
    try:
        return hub.download(plan)
    except hub.HubError as exc:
        raise click.ClickException(f"pull of {plan.repo} stopped: {exc}") from None
    except KeyboardInterrupt:
        raise click.ClickException(
            "pull interrupted; finished files are kept, run the same command to fetch the rest"
        ) from None


def _verify(folder: Path, label: str) -> None:
    import torch

    from riffpad.engine import loader

    click.echo("verifying: loading every component...")
    try:
        loaded = loader.load_components(folder, torch.device("cpu"), torch.float32, label=label)
    except loader.ModelError as exc:
        raise click.ClickException(f"downloaded, but it does not load: {exc}") from None
    problems = sd15_problems(loaded)
    if problems:
        raise click.ClickException(f"{folder} is not a Stable Diffusion 1.x model: {problems}")
    unet = loaded.unet.config
    click.echo(
        f"ok: unet {unet.sample_size}x{unet.sample_size} latents, text width "
        f"{unet.cross_attention_dim}, scheduler {type(loaded.scheduler).__name__}"
    )


def sd15_problems(loaded) -> str:
    """What keeps the loaded parts from working together the way SD 1.5 (and riffpad) uses
    them; empty when they fit."""
    unet, vae, text = loaded.unet.config, loaded.vae.config, loaded.text_encoder.config
    issues = []
    if unet.in_channels != 4 or unet.out_channels != 4 or vae.latent_channels != 4:
        issues.append("latents are not 4 channels")
    if 2 ** (len(vae.block_out_channels) - 1) != 8:
        issues.append("the VAE does not scale by 8")
    if text.hidden_size != unet.cross_attention_dim:
        issues.append(f"text width {text.hidden_size} != unet's {unet.cross_attention_dim}")
    if getattr(loaded.tokenizer, "model_max_length", 77) != 77:
        issues.append("the tokenizer does not take 77 tokens")
    return "; ".join(issues)


def _folder_summary(folder: Path) -> dict:
    from riffpad.engine import seeds, weights

    info: dict = {"path": str(folder), "components": {}}
    try:
        comps = weights.components(folder)
    except weights.WeightsError as exc:
        info["problem"] = str(exc)
        comps = {}
    for name, comp in comps.items():
        entry = {"format": comp.fmt, "size": comp.size}
        if comp.fmt == "bin":
            done = (weights.converted_dir(comp) / "config.json").is_file()
            entry["safetensors_copy"] = str(weights.converted_dir(comp)) if done else None
        info["components"][name] = entry
    info["size"] = sum(c["size"] for c in info["components"].values())
    info["seed_images"] = [n for n in seeds.seed_names(folder) if not n.startswith("builtin:")]
    info["default_seed"] = seeds.default_seed(folder)
    return info


@model.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_models(as_json: bool) -> None:
    """What is cached: Hub models (HF_HOME) and riffpad's safetensors copies."""
    from huggingface_hub import scan_cache_dir

    from riffpad.engine import weights

    hub = _hub()
    rows = []
    try:
        repos = scan_cache_dir(hub.hub_cache()).repos
    except Exception:  # no cache yet
        repos = []
    for repo in sorted(repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
            summary = _folder_summary(Path(rev.snapshot_path))
            fmts = {c["format"] for c in summary["components"].values()}
            rows.append(
                {
                    "model": repo.repo_id,
                    "revision": rev.commit_hash,
                    "refs": sorted(rev.refs),
                    "size": rev.size_on_disk,
                    "format": "+".join(sorted(fmts)) or "incomplete",
                    "seed_images": len(summary["seed_images"]),
                    "path": str(rev.snapshot_path),
                }
            )
    converted = weights.converted_entries()
    if as_json:
        out = {"hub_cache": str(hub.hub_cache()), "models": rows}
        out["converted"] = [{**c, "path": str(c["path"])} for c in converted]
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"Hugging Face cache: {hub.hub_cache()}")
    if not rows:
        click.echo(f"  (no models; fetch one with: riffpad model pull {DEFAULT_MODEL})")
    for r in rows:
        refs = ",".join(r["refs"]) or "-"
        click.echo(
            f"  {r['model']}  {r['revision'][:12]} ({refs})  {hub.human(r['size'])}  "
            f"{r['format']}  {r['seed_images']} seed images"
        )
    if converted:
        total = sum(c["size"] for c in converted)
        click.echo(f"riffpad safetensors copies: {weights.converted_root()} ({hub.human(total)})")
        for c in converted:
            click.echo(f"  {c.get('model', '?')} {c.get('component', '?')}  {hub.human(c['size'])}")


@model.command()
@click.argument("model_ref", metavar="[REPO|PATH]", default=DEFAULT_MODEL)
@click.option("--revision", metavar="REV", help="Branch, tag, commit or refs/pr/N.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(model_ref: str, revision: str | None, as_json: bool) -> None:
    """Where a model is, how big, which weight format, which seed images (no download)."""
    hub = _hub()
    path = Path(model_ref).expanduser()
    if path.is_dir():
        folder = path
    elif hub.is_repo_id(model_ref):
        folder = hub.cached_folder(model_ref, revision)
        if folder is None:
            raise click.ClickException(
                f"{model_ref} is not in the Hugging Face cache ({hub.hub_cache()}); "
                f"fetch it with: {hub.pull_command(model_ref, revision)}"
            )
    else:
        raise click.ClickException(f"{model_ref}: no such folder, and not a repo id (owner/name)")
    summary = {"model": model_ref, **_folder_summary(folder)}
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{model_ref}\n  folder: {summary['path']}\n  size: {hub.human(summary['size'])}")
    if "problem" in summary:
        click.echo(f"  problem: {summary['problem']}")
    for name, c in summary["components"].items():
        note = ""
        if c["format"] == "bin":
            copy = c["safetensors_copy"]
            note = f" -> safetensors copy {copy}" if copy else " (converted on first load)"
        click.echo(f"  {name}: {c['format']} {hub.human(c['size'])}{note}")
    seeds_list = ", ".join(summary["seed_images"]) or "none (riffpad's built-in loops)"
    click.echo(f"  seed images: {seeds_list}\n  default seed: {summary['default_seed']}")


@model.command()
@click.argument("repo")
@click.option("--revision", metavar="REV", help="Only this revision (default: all).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
def rm(repo: str, revision: str | None, yes: bool) -> None:
    """Delete REPO from the Hugging Face cache, with riffpad's safetensors copies of it."""
    from huggingface_hub import scan_cache_dir

    from riffpad.engine import weights

    hub = _hub()
    try:
        repos = [r for r in scan_cache_dir(hub.hub_cache()).repos if r.repo_id == repo]
    except Exception:
        repos = []
    revs = [
        rev
        for r in repos
        if r.repo_type == "model"
        for rev in r.revisions
        if revision is None or rev.commit_hash.startswith(revision) or revision in rev.refs
    ]
    copies = [c for c in weights.converted_entries() if c.get("model") == repo]
    if not revs and not copies:
        raise click.ClickException(f"{repo} is not in the cache ({hub.hub_cache()})")
    size = sum(r.size_on_disk for r in revs) + sum(c["size"] for c in copies)
    what = f"{repo}: {len(revs)} revision(s), {len(copies)} converted copies, {hub.human(size)}"
    if not yes and not click.confirm(f"delete {what}?"):
        raise click.Abort()
    if revs:
        strategy = scan_cache_dir(hub.hub_cache()).delete_revisions(*[r.commit_hash for r in revs])
        strategy.execute()
    for c in copies:
        shutil.rmtree(c["path"], ignore_errors=True)
    click.echo(f"deleted {what}")


@model.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder to write.")
@click.option(
    "--config",
    metavar="REPO|PATH",
    default=None,
    help="SD 1.5 diffusers folder or repo id giving the configs and tokenizer "
    f"(default: {DEFAULT_MODEL} when cached).",
)
def import_(file: Path, out: Path | None, config: str | None) -> None:
    """Turn a single-file SD 1.x checkpoint (.safetensors, or .ckpt read by the restricted
    loader) into a diffusers folder riffpad can play with --model."""
    from riffpad.engine import importer

    try:
        folder = importer.import_single_file(file, out, config)
    except importer.ImportFailed as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{folder}\nplay it with: riffpad --model {folder}")
