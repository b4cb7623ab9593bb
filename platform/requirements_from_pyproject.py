"""Print the project's requirements (base plus the named extras) from pyproject.toml.

Used by the Dockerfiles to install the dependencies in their own cached layer
*before* the source is copied, so editing code does not reinstall torch & co.
The final `pip install -e '.[extra]'` still resolves everything, so a requirement
this script misses (dynamic metadata, a self-referencing extra) is only slower,
never absent.

    python platform/requirements_from_pyproject.py cpu > requirements.txt
"""

import re
import sys
import tomllib


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(extras: list[str]) -> None:
    with open("pyproject.toml", "rb") as fh:
        project = tomllib.load(fh).get("project", {})
    own_name = canonical(project.get("name", ""))
    requirements = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        requirements += optional.get(extra, [])
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
        # "plaza[foo]" inside an extra refers to this project itself: leave it to the final install.
        if match and canonical(match.group(1)) == own_name:
            continue
        print(requirement)


if __name__ == "__main__":
    main(sys.argv[1:])
