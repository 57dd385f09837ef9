"""The CLI is a public interface: docs/cli.md must describe exactly the commands and options."""

from dagster_project.cli.reference import CLI_DOC, updated_document


def test_cli_reference_is_up_to_date():
    assert CLI_DOC.read_text(encoding="utf-8") == updated_document(), (
        "docs/cli.md is stale: run `python -m dagster_project.cli.reference` and note the change"
    )
