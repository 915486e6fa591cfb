"""The house's floors and rooms: imports point down only, packages meet through their public
faces, and every face names what it exports."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from engine._lazy import face_table

ROOT = Path(__file__).resolve().parents[1]
# studies/'s packages, lowest first: a package imports only from those before it (their faces).
LAYERS = ["storage", "sweep", "search", "reports", "tracking", "execution"]
BASE = {"studies.errors", "studies.hooks", "studies._optuna_compat"}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, ``from x import y`` as ``x`` (and as
    ``x.y`` too when ``y`` is a submodule that ``x``'s face does not list, so that it is seen)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
            for alias in node.names:  # 'from studies.sweep import config': the module studies.sweep.config
                sub = ROOT.joinpath(*node.module.split("."), alias.name)
                module = sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file()
                if module and alias.name not in _face(node.module):  # a face may list a submodule
                    found.append((node.lineno, f"{node.module}.{alias.name}"))
    return found


def _face(package: str) -> list[str]:
    """The ``__all__`` of a package of ours (empty for a module or one without it)."""
    init = ROOT.joinpath(*package.split("."), "__init__.py")
    if not init.is_file():
        return []
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _package_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT / "studies").parts
    return parts[0] if len(parts) > 1 and parts[0] in LAYERS else None


@pytest.mark.parametrize("path", _files("studies"), ids=lambda p: str(p.relative_to(ROOT)))
def test_studies_imports_point_down_and_meet_through_faces(path):
    own = _package_of(path)
    allowed = LAYERS[: LAYERS.index(own)] if own else LAYERS  # a loose module (errors, hooks) imports none
    if own is None:
        allowed = []
    for line, module in _imports(path):
        if module.startswith(("sweeps", "click")):
            pytest.fail(f"{path.relative_to(ROOT)}:{line} imports {module}: studies/ never imports the command line")
        if not module.startswith("studies.") or module in BASE or module.startswith("studies._optuna_compat"):
            continue
        pkg = module.split(".")[1]
        if pkg == own:
            continue
        assert pkg in allowed, (
            f"{path.relative_to(ROOT)}:{line} imports {module}: {own or 'a base module'} is "
            f"below {pkg} (layers, lowest first: {LAYERS})"
        )
        assert module == f"studies.{pkg}", (
            f"{path.relative_to(ROOT)}:{line} imports {module}: another package is used through its face, studies.{pkg}"
        )


@pytest.mark.parametrize("path", _files("sweeps"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_command_line_uses_only_the_faces(path):
    for line, module in _imports(path):
        if not module.startswith("studies"):
            continue
        ok = module in {f"studies.{p}" for p in LAYERS} | {"studies.errors"}
        assert ok, f"{path.relative_to(ROOT)}:{line} imports {module}: the command line uses the packages' faces"


SPEC = "sweeps.spec"  # the sweep file's package: its rooms meet the rest through its face


def _spec_users() -> list[Path]:
    own = ROOT / "sweeps" / "spec"
    return [p for folder in ("sweeps", "tests", "benchmarks") for p in _files(folder) if p.parent != own]


@pytest.mark.parametrize("path", _spec_users(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_sweep_file_is_read_through_its_face(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            modules, names = [a.name for a in node.names], []
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules, names = [node.module], [a.name for a in node.names]
        else:
            continue
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        for module in modules:
            assert not module.startswith(f"{SPEC}."), f"{where} imports {module}: use its face, {SPEC}"
        if modules == [SPEC]:
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{where} imports {private} from {SPEC}: not public names"


def test_the_sweep_files_rooms_import_each_other_not_their_face():
    for path in sorted((ROOT / "sweeps" / "spec").glob("*.py")):
        if path.name == "__init__.py":
            continue
        for line, module in _imports(path):
            assert module != SPEC, f"{path.relative_to(ROOT)}:{line} imports {SPEC}: a room imports its sibling"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{SPEC}."):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.relative_to(ROOT)}:{node.lineno} imports {private}: a room's own names"


def test_the_sweep_files_face_exports_what_it_lists():
    face = importlib.import_module(SPEC)
    tree = ast.parse(Path(face.__file__).read_text(encoding="utf-8"))
    imported = {a.asname or a.name for node in tree.body if isinstance(node, ast.ImportFrom) for a in node.names}
    assert sorted(face.__all__) == sorted(imported - {"annotations"}), "the face's imports and __all__ differ"
    assert all(getattr(face, name) is not None for name in face.__all__)


@pytest.mark.parametrize("path", _files("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_engine_imports_numpy_and_itself_only(path):
    for line, module in _imports(path):
        top = module.split(".")[0]
        # scikit-learn's bundled datasets are loaded lazily, inside the dataset code
        assert top in {"engine", "numpy", "__future__", "sklearn"} or top in _stdlib(), (
            f"{path.relative_to(ROOT)}:{line} imports {module}: the engine is pure NumPy"
        )


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names)


@pytest.mark.parametrize("package", LAYERS)
def test_each_face_exports_what_it_lists(package):
    face = importlib.import_module(f"studies.{package}")
    table = face_table(face.__file__, face.__name__)
    assert sorted(face.__all__) == sorted(table), "the TYPE_CHECKING imports and __all__ differ"
    submodules = {p.stem for p in Path(face.__file__).parent.glob("*.py")} - {"__init__"}
    for name in face.__all__:
        assert getattr(face, name) is not None
        # a name shared with a submodule is shadowed by it once the submodule is imported
        assert name not in submodules or table[name][0] == face.__name__, f"{name!r} is also a submodule's name"
    with pytest.raises(AttributeError):
        face.not_a_name  # noqa: B018


def test_no_folder_holds_more_than_twelve_modules():
    folders = [ROOT / "engine", *[p for top in ("studies", "sweeps") for p in (ROOT / top).rglob("*") if p.is_dir()]]
    for folder in [*folders, ROOT / "sweeps"]:
        if folder.name == "__pycache__":
            continue
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 12, f"{folder.relative_to(ROOT)} holds {len(modules)} modules"


def test_no_function_is_longer_than_eighty_lines():
    long = []
    for folder in ("engine", "studies", "sweeps"):
        for path in _files(folder):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 80:
                        long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
