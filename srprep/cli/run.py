from __future__ import annotations

from pathlib import Path

import click

from ..errors import SrprepError
from ..io.images import write_image
from ..io.graphviz import dot_available, render_dot, write_dot
from ..ops.diagram import dag_dot, draw_dag
from ..pipeline import PipelineError, graph_text, load_pipeline, missing_inputs, run_pipeline, selected_steps
from .common import ShippedFile
from .stepcheck import step_checker


@click.command("run")
@click.argument("pipeline", type=ShippedFile("pipeline"))
@click.option("--until", metavar="STEP", help="Run only STEP and the steps it needs.")
@click.option("--only", metavar="STEP", help="Run just STEP (the steps it needs must be up to date).")
@click.option("--force", "force", multiple=True, metavar="STEP",
              help="Redo STEP even if up to date: with its command's --force, or, for a command without one "
                   "(train, eval), after removing its output (inside the workdir only). Its downstream steps "
                   "rerun too.")
@click.option("--set", "overrides", multiple=True, metavar="STEP.OPTION=VALUE",
              help="Override a step's option for this run (VALUE is read as YAML). Repeatable.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Where step outputs go (default: the pipeline's workdir).")
@click.option("--dry-run", is_flag=True,
              help="Show which steps would run and why, and every input that is missing; run nothing.")
@click.option("--graph", is_flag=True, help="Print the steps and their dependencies; run nothing.")
@click.option("--graph-png", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the pipeline as a PNG (with Graphviz's dot when installed, else a plain drawing).")
@click.option("--graph-svg", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the pipeline as an SVG (needs Graphviz's dot: apt-get install graphviz).")
@click.option("--graph-dot", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the pipeline as Graphviz DOT text (for dot, xdot or any DOT viewer).")
@click.pass_context
def run_cmd(ctx: click.Context, pipeline: Path, until, only, force, overrides, workdir, dry_run, graph,
            graph_png, graph_svg, graph_dot) -> None:
    """Run a pipeline: a chain of srprep steps in one YAML file, cached step by step.

    PIPELINE is a YAML file or the name of a pipeline shipped with srprep (srprep/pipelines/; an
    unknown name lists them). An up-to-date step is skipped (and said so); a changed option reruns
    that step and every step downstream of it, nothing else; a killed pipeline resumes where it
    stopped.

    \b
    Examples:
      srprep run quickstart
      srprep run quickstart --dry-run --set data.scale=[3]
      srprep run div2k_eco_x2 --until pack --graph-png graph.png
      srprep run quickstart --graph --graph-svg graph.svg --graph-dot graph.dot
    """
    app = ctx.obj
    scheduler = ctx.find_root().params.get("scheduler")
    root = ctx.find_root().command
    pipe = load_pipeline(pipeline, workdir=workdir, overrides=list(overrides), scheduler=scheduler,
                         check_step=step_checker(root))
    if graph or graph_png or graph_svg or graph_dot:
        click.echo(graph_text(pipe))
        edges = [(n, s.name) for s in pipe.steps.values() for n in s.needs]
        commands = {s.name: s.command for s in pipe.steps.values()}
        dot = dag_dot(list(pipe.steps), edges, labels=commands, title=f"{pipe.name} -> {pipe.workdir}",
                      notes={s.name: s.description for s in pipe.steps.values() if s.description})
        if graph_dot:
            click.echo(f"graph (DOT) -> {write_dot(dot, graph_dot)}")
        if graph_svg:
            click.echo(f"graph -> {render_dot(dot, graph_svg)}")
        if graph_png and dot_available():
            click.echo(f"graph -> {render_dot(dot, graph_png)}")
        elif graph_png:
            write_image(graph_png, draw_dag(list(pipe.steps), edges, labels=commands))
            click.echo(f"graph -> {graph_png} (a plain drawing: install Graphviz for a clearer one, "
                       f"apt-get install graphviz)")
        if graph:
            return

    prefix = (["-q"] if app.quiet else []) + (["-v"] if app.verbose else [])
    if pipe.scheduler:
        prefix += ["--scheduler", pipe.scheduler]

    def invoke(argv: list[str]) -> None:
        if not app.quiet:
            click.echo(f"$ srprep {' '.join(argv)}")
        try:
            root.main(args=prefix + argv, prog_name="srprep", standalone_mode=False)
        except SrprepError as exc:
            raise PipelineError(f"step {argv[0]!r} failed: {exc}") from exc

    def report(outcome) -> None:
        if outcome.status == "ran":
            click.echo(f"[{outcome.name}] done in {outcome.elapsed:.1f} s ({outcome.reason})")
        elif outcome.status == outcome.reason:
            click.echo(f"[{outcome.name}] {outcome.status}")
        else:
            click.echo(f"[{outcome.name}] {outcome.status} ({outcome.reason})")

    missing = missing_inputs(pipe, selected_steps(pipe, until=until, only=only)) if dry_run else []
    takes_force = [name for name, command in root.commands.items()
                   if any("--force" in getattr(p, "opts", ()) for p in command.params)]
    outcomes = run_pipeline(pipe, invoke, until=until, only=only, force=list(force), dry_run=dry_run,
                            on_step=report, takes_force=takes_force)
    ran = sum(o.status == "ran" for o in outcomes)
    skipped = sum(o.status == "up to date" for o in outcomes)
    would = sum(o.status == "would run" for o in outcomes)
    verb = f"{would} would run" if dry_run else f"{ran} ran"
    click.echo(f"{pipe.name}: {verb}, {skipped} up to date ({sum(o.elapsed for o in outcomes):.1f} s) "
               f"-> {pipe.workdir}")
    if missing:
        for line in missing:
            click.echo(f"missing: {line}", err=True)
        raise PipelineError(f"{pipe.path}: {len(missing)} input(s) missing (listed above): a run would stop there")
