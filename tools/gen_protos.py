"""Generate Python stubs and the Envoy descriptor set from protos/ (`make protos`).

`--check` generates into a temporary folder and fails if the tree's generated files differ.
"""

import filecmp
import pathlib
import sys
import sysconfig
import tempfile

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
LIBS = ROOT / "libs"
DESCRIPTOR_SET = ROOT / "gateway" / "llmagg.pb"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def generate(libs: pathlib.Path, descriptor_set: pathlib.Path) -> None:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    googleapis = sysconfig.get_paths()["purelib"]  # googleapis-common-protos ships google/api/*.proto
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{googleapis}",
        f"-I{well_known}",
        f"--python_out={libs}",
        f"--pyi_out={libs}",
        f"--grpc_python_out={libs}",
        f"--descriptor_set_out={descriptor_set}",
        "--include_imports",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for source in sources:
        package_dir = libs / pathlib.Path(source).parent
        while package_dir != libs:
            (package_dir / "__init__.py").touch()
            package_dir = package_dir.parent


def generated_files(libs: pathlib.Path) -> set[pathlib.Path]:
    return {p.relative_to(libs) for p in libs.rglob("*") if p.name.endswith(GENERATED_SUFFIXES)}


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh_libs, fresh_descriptor = pathlib.Path(tmp) / "libs", pathlib.Path(tmp) / "llmagg.pb"
        fresh_libs.mkdir()
        generate(fresh_libs, fresh_descriptor)
        expected, present = generated_files(fresh_libs), generated_files(LIBS)
        stale = sorted(
            str(LIBS.relative_to(ROOT) / path)
            for path in expected | present
            if path not in expected or path not in present or not filecmp.cmp(fresh_libs / path, LIBS / path, False)
        )
        if not filecmp.cmp(fresh_descriptor, DESCRIPTOR_SET, shallow=False):
            stale.append(str(DESCRIPTOR_SET.relative_to(ROOT)))
    if stale:
        print("generated code is stale (run `make protos`):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        sys.exit(check())
    generate(LIBS, DESCRIPTOR_SET)
