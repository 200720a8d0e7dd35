"""The README and docs/ tell the truth: links resolve, nothing points outside the repository, the
first screen has the three commands CI and users run, and its example runs against a real broker."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIRST_SCREEN = 45  # lines
#: files a person writes; the rest (data, results, the venvs, git's own) is not looked at
TEXT_SUFFIXES = {".md", ".py", ".ipynb", ".yml", ".yaml", ".toml", ".sh", ".txt", ".cfg", ".ini", ".json", ""}
SKIPPED_DIRS = {".git", ".venv", "runs", "__pycache__", "node_modules", "build", "dist", "results"}

LINK = re.compile(r"\]\(([^)\s]+)\)")
EM_NAME = re.compile(r"\bem\.(\w+(?:\.\w+)*)")  # em.produce, em.sources.source_names
DOTTED = re.compile(r"(?<![\w/.])eventml\.(\w+(?:\.\w+)*)")  # eventml.plots.plot_grid (not header names)
FROM_IMPORT = re.compile(r"^from (eventml(?:\.\w+)*) import ([\w, ]+)$", flags=re.MULTILINE)
REPO_PATH = re.compile(r"`((?:eventml|tests|benchmarks|notebooks|docs|\.ci)/[\w./-]*\w)`")


def first_screen() -> list[str]:
    return README.read_text().splitlines()[:FIRST_SCREEN]


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+\s+(.+?)\s*$", page.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower().replace("`", "")).replace(" ", "-") for h in headings}


def relative_links(page: Path) -> list[str]:
    return [link for link in LINK.findall(page.read_text()) if not re.match(r"[a-z]+:", link)]


def repository_text_files():
    """The repository's text files: what git tracks or would (not what it ignores: .venv, runs/, build
    metadata), else every file under the root outside the skipped folders."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True)
    if listed.returncode == 0:
        paths = [ROOT / line for line in listed.stdout.splitlines()]
    else:
        paths = []
        for dirpath, dirnames, filenames in os.walk(ROOT):
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS and not d.startswith(".venv")]
            paths.extend(Path(dirpath, name) for name in filenames)
    for path in paths:
        if path.suffix in TEXT_SUFFIXES and path.is_file():
            yield path


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_points_to_a_file_and_heading_that_exist(page):
    links = relative_links(page)
    assert links, f"{page.relative_to(ROOT)} links nowhere"
    broken = []
    for link in links:
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists() or ROOT not in [path, *path.parents]:
            broken.append(link)
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(link)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_every_docs_page_is_linked_from_the_readme_first_screen():
    screen = "\n".join(first_screen())
    unlinked = [page.name for page in sorted((ROOT / "docs").glob("*.md")) if f"(docs/{page.name})" not in screen]
    assert not unlinked and "(benchmarks/README.md)" in screen, f"not on the README's first screen: {unlinked}"


def test_nothing_in_the_repository_points_outside_it():
    outside = ".." + "/shared"  # written in two parts, so this file does not match itself
    hits = [str(path.relative_to(ROOT)) for path in repository_text_files()
            if outside in path.read_text(errors="replace")]
    assert not hits, f"{outside} in {hits}"


def test_the_first_screen_says_what_eventml_is_and_has_the_three_commands_lab_first():
    screen = first_screen()
    assert screen[0] == "# eventml" and "Kafka" in "\n".join(screen[:5])
    commands = [line.split()[:2] for line in screen if line.startswith("./run.sh ")]
    assert commands == [["./run.sh", "lab"], ["./run.sh", "notebooks"], ["./run.sh", "test"]]
    assert "import eventml as em" in screen


def test_the_readme_test_command_is_the_one_ci_runs():
    (ci_line,) = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("./run.sh")]
    command = " ".join(ci_line.split()[:2])
    assert command == "./run.sh test"
    assert any(line.split("#")[0].strip() == command for line in first_screen())


def test_every_notebook_is_in_the_first_screen_table():
    screen = "\n".join(first_screen())
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks and all(f"(notebooks/{name})" in screen for name in notebooks)


def resolves(dotted: str) -> bool:
    """Whether ``eventml.<dotted>`` is a name: a module, or an attribute of the longest module prefix."""
    value = importlib.import_module("eventml")
    for part in dotted.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            try:
                value = importlib.import_module(f"{value.__name__}.{part}")
            except (ModuleNotFoundError, AttributeError):
                return False
    return True


def generated(path: str) -> bool:
    """Whether a path lies in a folder git ignores (made by a run: benchmarks/results/, a venv)."""
    ignored = [line for line in (ROOT / ".gitignore").read_text().splitlines() if "/" in line.rstrip("/")]
    return any(path.startswith(folder.rstrip("/")) for folder in ignored)


def test_every_eventml_name_and_repository_path_the_pages_mention_exists():
    missing = []
    for page in PAGES:
        text = page.read_text()
        names = {name for name in EM_NAME.findall(text) if not name.endswith("_")}  # em.read_* is a family
        # eventml.X.Y where X is a module of the package (eventml.error.reason is a Kafka header name)
        names |= {name for name in DOTTED.findall(text)
                  if importlib.util.find_spec(f"eventml.{name.split('.')[0]}") is not None}
        for module, imported in FROM_IMPORT.findall(text):
            names |= {f"{module}.{name.strip()}".removeprefix("eventml.") for name in imported.split(",")}
        missing += [f"{page.name}: eventml.{name}" for name in sorted(names) if not resolves(name)]
        missing += [f"{page.name}: {path}" for path in REPO_PATH.findall(text)
                    if not (ROOT / path).exists() and not generated(path) and "NN_" not in path]  # NN_: a pattern
    assert not missing, f"named in the docs but not in the repository: {missing}"


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", "\n".join(first_screen()) + "\n", flags=re.DOTALL)
    (example,) = [block for block in blocks if "import eventml as em" in block]
    return example


@pytest.mark.integration
def test_the_readme_example_produces_learns_and_plots(kafka_bootstrap, topic):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import eventml as em

    example = readme_example()
    (readme_topic,) = set(re.findall(r'em\.recreate_topic\("([^"]+)"\)', example))
    n_events = int(re.search(r"em\.synthetic\(\"\w+\", ([\d_]+)", example).group(1))
    learners = re.search(r"em\.prequential\(.*?\[(.*?)\]", example).group(1).replace('"', "").split(", ")
    namespace: dict = {}
    try:
        exec(compile(example.replace(f'"{readme_topic}"', f'"{topic}"'), "README.md", "exec"), namespace)
        df = namespace["df"]
        assert sorted(df["learner"].unique()) == sorted(learners)
        assert df["events"].max() == n_events  # every event produced came back and was learned from
        final = df[df["events"] == n_events].set_index("learner")["accuracy"]
        assert (final > 0.8).all(), final  # SEA is learnable: far above the 0.5 of a coin
        assert set(learners) <= {line.get_label() for line in plt.gca().get_lines()}  # one line per learner
    finally:
        plt.close("all")
        em.delete_topic(topic)
