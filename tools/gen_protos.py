"""Generate Python stubs and the Envoy descriptor set from protos/ (run by `make protos`)."""

import pathlib
import sys
import sysconfig

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
LIBS = ROOT / "libs"
DESCRIPTOR_SET = ROOT / "gateway" / "llmagg.pb"


def main() -> int:
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    googleapis = sysconfig.get_paths()["purelib"]  # googleapis-common-protos ships google/api/*.proto
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{googleapis}",
        f"-I{well_known}",
        f"--python_out={LIBS}",
        f"--pyi_out={LIBS}",
        f"--grpc_python_out={LIBS}",
        f"--descriptor_set_out={DESCRIPTOR_SET}",
        "--include_imports",
        *sources,
    ]
    if protoc.main(args) != 0:
        return 1
    for source in sources:
        package_dir = LIBS / pathlib.Path(source).parent
        while package_dir != LIBS:
            (package_dir / "__init__.py").touch()
            package_dir = package_dir.parent
    return 0


if __name__ == "__main__":
    sys.exit(main())
