"""The dbt resource skips two start-up costs of dagster-dbt (resources.KpiDbtCliResource);
these tests fail if the pinned dagster-dbt changes what that relies on."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dagster_dbt import DbtCliResource

from dagster_project.defs.resources import KpiDbtCliResource, build_resources, dbt_executable
from dagster_project.settings import DBT_PROJECT_DIR


def test_the_overridden_methods_still_exist_in_dagster_dbt():
    assert isinstance(
        DbtCliResource.__dict__.get("_cli_version"), type(KpiDbtCliResource._cli_version)
    )
    assert callable(DbtCliResource.__dict__.get("_initialize_dbt_core_adapter"))


def test_the_version_read_from_the_package_is_the_executables():
    resource = build_resources()["dbt"]
    assert isinstance(resource, KpiDbtCliResource)
    # the interpreter the dbt executable runs with (its shebang), asked which dbt-core it
    # imports (not `dbt --version`, which also looks up the latest release on PyPI)
    shebang = Path(dbt_executable()).read_text(encoding="utf-8").splitlines()[0]
    interpreter = shebang.removeprefix("#!").strip()
    printed = subprocess.run(
        [interpreter, "-c", "from dbt.version import __version__; print(__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert str(resource._cli_version) == printed


def test_no_dbt_adapter_is_built_in_the_dagster_process():
    resource = KpiDbtCliResource(
        project_dir=str(DBT_PROJECT_DIR),
        profiles_dir=str(DBT_PROJECT_DIR),
        dbt_executable=dbt_executable(),  # the virtual environment may not be on PATH
    )
    assert resource._initialize_dbt_core_adapter(["build"]) is None
