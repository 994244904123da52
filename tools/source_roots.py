"""Put the repo's source roots on the virtualenv's path (a .pth file), so every process started
with the venv's python -- services, tests, the benchmark -- imports the working tree."""

import pathlib
import sysconfig

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE_ROOTS = ["libs", "services/router", "simulator", "."]

if __name__ == "__main__":
    pth = pathlib.Path(sysconfig.get_paths()["purelib"]) / "llmagg-source-roots.pth"
    pth.write_text("".join(f"{ROOT / root}\n" for root in SOURCE_ROOTS))
