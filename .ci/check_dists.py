"""Check the built distributions (``.ci/install-check``): each wheel holds every file of its
package that git tracks, each sdist holds what its wheel needs, and the core wheel requires
neither PyGithub nor openai except under an extra."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

DISTS = {  # distribution file prefix -> (source folder, package folder inside it)
    "trigger_celery": (".", "trigger_celery"),
    "trigger_celery_github": ("integrations/github", "trigger_celery_github"),
    "trigger_celery_openai": ("integrations/openai", "trigger_celery_openai"),
    "trigger_celery_typeform": ("integrations/typeform", "trigger_celery_typeform"),
    "trigger_celery_slack": ("examples/integrations/slack", "trigger_celery_slack"),
}
SDK_ONLY_UNDER_EXTRA = ("pygithub", "openai")


def main(dist: Path) -> int:
    problems: list[str] = []
    for prefix, (src, pkg) in DISTS.items():
        wheels = list(dist.glob(f"{prefix}-*.whl"))
        sdists = list(dist.glob(f"{prefix}-*.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            problems.append(f"{prefix}: expected one wheel and one sdist, found {wheels + sdists}")
            continue
        tracked = subprocess.run(["git", "ls-files", f"{src}/{pkg}"], capture_output=True,
                                 text=True, check=True).stdout.split()
        wanted = {str(Path(f).relative_to(src)) for f in tracked}
        in_wheel = set(zipfile.ZipFile(wheels[0]).namelist())
        with tarfile.open(sdists[0]) as tar:
            in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
        for f in sorted(wanted - in_wheel):
            problems.append(f"{wheels[0].name} lacks {f}")
        for f in sorted(wanted - in_sdist):
            problems.append(f"{sdists[0].name} lacks {f}")
        print(f"{wheels[0].name}: {len(in_wheel)} files, all {len(wanted)} tracked package "
              f"files present" if not wanted - in_wheel else "")
    core = next(dist.glob("trigger_celery-*.whl"))
    with zipfile.ZipFile(core) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [line.split(":", 1)[1].strip() for line in z.read(meta).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    for req in requires:
        name = req.split(";")[0].strip().lower()
        if name.startswith(SDK_ONLY_UNDER_EXTRA) and "extra ==" not in req:
            problems.append(f"the core wheel requires {req!r} outside an extra")
    for p in problems:
        print("error:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
