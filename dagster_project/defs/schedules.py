"""Daily follow-up of the open collection campaigns: the ``campaign/status`` asset, its
``late_deliveries`` check, the ``campaign_status`` job and the ``campaign_status_daily``
schedule.

A campaign (``sources/<year>/campagne.yml``) is open from its opening date until 60 days
after the last due date it sets. While one is open, the schedule runs the job every morning:
the asset computes where each expected delivery stands (``dagster_project.campaign.status``),
replaces that year's rows of the warehouse table ``campaign.status``, and shows the late and
rejected deliveries in its metadata; the check fails, as a warning that blocks nothing, when
something is late or rejected. Outside campaigns the schedule skips, saying why.

Every date is read from the ``sources`` resource's clock (``SourcesResource.today_date()``,
``KPI_TODAY``), so tests and replays can set it.

No ``from __future__ import annotations`` here: Dagster reads the asset's and the schedule's
parameter annotations (context type, resources) at definition time.
"""

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    schedule,
)

from dagster_project.campaign.dates import parse_today
from dagster_project.campaign.plan import CAMPAIGN_FILE, Campaign, CampaignError, load_campaign
from dagster_project.campaign.status import (
    StatusRow,
    campaign_status,
    summarize,
    write_status_table,
)
from dagster_project.defs.resources import WAREHOUSE_POOL, SourcesResource, WarehouseResource

CAMPAIGN_GROUP = "campaign"
STATUS_ASSET_KEY = AssetKey(["campaign", "status"])
LATE_CHECK_NAME = "late_deliveries"
JOB_NAME = "campaign_status"
SCHEDULE_NAME = "campaign_status_daily"
CRON = "0 7 * * *"  # every morning at 7:00, Paris time
TIMEZONE = "Europe/Paris"
GRACE_DAYS = 60  # a campaign stays open this long after its last due date
DELIVERY_LOG_KEY = AssetKey(["ingest", "deliveries"])  # dbt source of the delivery log
MAX_LISTED = 50  # rows of the markdown table and names in the check's description
_YEAR_DIR = re.compile(r"^\d{4}$")


# --- which campaigns are open ----------------------------------------------------------------


def last_due_date(campaign: Campaign) -> dt.date:
    dates = [e.due_date for e in campaign.entries if e.due_date is not None]
    return max(dates) if dates else campaign.default_due_date


def closing_date(campaign: Campaign) -> dt.date:
    """Last day the campaign counts as open: last due date + ``GRACE_DAYS``."""
    return last_due_date(campaign) + dt.timedelta(days=GRACE_DAYS)


def is_open(campaign: Campaign, today: dt.date) -> bool:
    return campaign.opening_date <= today <= closing_date(campaign)


def campaign_years(sources_dir: Path) -> list[int]:
    """Years of ``sources/<year>/`` that hold a campaign file."""
    sources_dir = Path(sources_dir)
    if not sources_dir.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in sources_dir.iterdir()
        if p.is_dir() and _YEAR_DIR.match(p.name) and (p / CAMPAIGN_FILE).is_file()
    )


@dataclass
class OpenCampaigns:
    """The campaigns open on ``today``, and the campaign files that could not be read."""

    today: dt.date
    campaigns: list[Campaign] = field(default_factory=list)
    errors: list[CampaignError] = field(default_factory=list)

    @property
    def years(self) -> list[int]:
        return [c.year for c in self.campaigns]


def open_campaigns(sources_dir: Path, today: dt.date) -> OpenCampaigns:
    found = OpenCampaigns(today=today)
    for year in campaign_years(sources_dir):
        try:
            campaign = load_campaign(Path(sources_dir), year)
        except CampaignError as exc:
            found.errors.append(exc)
            continue
        if is_open(campaign, today):
            found.campaigns.append(campaign)
    return found


# --- presentation ----------------------------------------------------------------------------


def _fr(value: dt.date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def _cell(text: object) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def problem_rows(rows: Sequence[StatusRow]) -> list[StatusRow]:
    """Late or rejected deliveries, most overdue first."""
    return sorted(
        (r for r in rows if r.late or r.rejected),
        key=lambda r: (-r.days_late, r.year, r.department, r.source_id),
    )


def late_markdown(rows: Sequence[StatusRow]) -> str:
    """Markdown table of the late and rejected deliveries (French, for the Dagster UI)."""
    problems = problem_rows(rows)
    if not problems:
        return "Aucune livraison en retard ni rejetée."
    lines = [
        "| Année | Direction | Source | Responsable | Échéance | Retard (jours) | Statut |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in problems[:MAX_LISTED]:
        owner = f"{r.owner} ({r.email})" if r.email else r.owner
        lines.append(
            "| "
            + " | ".join(
                _cell(v)
                for v in (
                    r.year,
                    r.direction_fr or r.department,
                    r.source_id,
                    owner,
                    _fr(r.due_date),
                    r.days_late or "",
                    r.status_fr,
                )
            )
            + " |"
        )
    if len(problems) > MAX_LISTED:
        lines.append(
            f"\n… et {len(problems) - MAX_LISTED} autre(s), voir la table campaign.status."
        )
    return "\n".join(lines)


def late_description(rows: Sequence[StatusRow]) -> str:
    problems = problem_rows(rows)
    if not problems:
        return "Aucune livraison en retard ni rejetée."
    late = sum(r.late for r in problems)
    rejected = sum(r.rejected for r in problems)
    items = "; ".join(
        f"{r.year} {r.department}/{r.source_id} ({r.status_fr})" for r in problems[:MAX_LISTED]
    )
    more = f" ; … et {len(problems) - MAX_LISTED} autre(s)" if len(problems) > MAX_LISTED else ""
    return f"{late} livraison(s) en retard, {rejected} rejetée(s) : {items}{more}"


# --- asset, job, schedule --------------------------------------------------------------------


@asset(
    key=STATUS_ASSET_KEY,
    group_name=CAMPAIGN_GROUP,
    deps=[DELIVERY_LOG_KEY],
    kinds={"duckdb", "python"},
    description=(
        "État de la collecte des campagnes ouvertes (ouverture ≤ aujourd'hui ≤ dernière "
        f"échéance + {GRACE_DAYS} jours) : une ligne par livraison attendue dans la table "
        "campaign.status ; les retards et rejets sont listés dans les métadonnées."
    ),
    check_specs=[
        AssetCheckSpec(
            LATE_CHECK_NAME,
            asset=STATUS_ASSET_KEY,
            blocking=False,
            description=(
                "Avertissement — aucune livraison attendue n'est en retard ni rejetée dans les "
                "campagnes ouvertes."
            ),
        )
    ],
    metadata={"table": "campaign.status", "campaign_file": f"sources/<année>/{CAMPAIGN_FILE}"},
    pool=WAREHOUSE_POOL,
)
def campaign_status_asset(
    context: AssetExecutionContext, warehouse: WarehouseResource, sources: SourcesResource
) -> MaterializeResult:
    today = parse_today(sources.today_date())
    sources_dir = Path(sources.path)
    found = open_campaigns(sources_dir, today)
    for error in found.errors:
        context.log.warning(f"Fichier de campagne ignoré : {error}")
    all_rows: list[StatusRow] = []
    summaries = []
    con = warehouse.connect(step=STATUS_ASSET_KEY.to_user_string())
    try:
        for campaign in found.campaigns:
            rows = campaign_status(con, sources_dir, campaign.year, today, campaign=campaign)
            write_status_table(con, campaign.year, rows)
            all_rows.extend(rows)
            summaries.append(summarize(rows, campaign.year))
    finally:
        con.close()

    problems = problem_rows(all_rows)
    late = sum(r.late for r in all_rows)
    rejected = sum(r.rejected for r in all_rows)
    metadata = status_metadata(today, found.years, all_rows, summaries)
    summary_text = metadata["résumé"].value
    context.log.info(summary_text)
    if found.errors:
        metadata["fichiers_de_campagne_invalides"] = MetadataValue.md(
            "\n".join(f"- {e}" for e in found.errors)
        )
    check = AssetCheckResult(
        check_name=LATE_CHECK_NAME,
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description=late_description(all_rows)[:2000],
        metadata={
            "en_retard": MetadataValue.int(late),
            "rejetées": MetadataValue.int(rejected),
            "liste": MetadataValue.md(late_markdown(all_rows)),
        },
    )
    return MaterializeResult(metadata=metadata, check_results=[check])


def status_metadata(
    today: dt.date, years: Sequence[int], rows: Sequence[StatusRow], summaries: Sequence
) -> dict:
    """What a materialisation of ``campaign/status`` shows (French)."""
    if summaries:
        summary_text = " ".join(s.text_fr() for s in summaries)
    else:
        summary_text = f"Aucune campagne ouverte au {_fr(today)} : campaign.status inchangée."
    return {
        "date_du_jour": MetadataValue.text(today.isoformat()),
        "campagnes_ouvertes": MetadataValue.text(", ".join(str(y) for y in years) or "aucune"),
        "résumé": MetadataValue.text(summary_text),
        "livraisons_attendues": MetadataValue.int(sum(s.expected for s in summaries)),
        "livraisons_acceptées": MetadataValue.int(sum(s.accepted for s in summaries)),
        "en_retard": MetadataValue.int(sum(r.late for r in rows)),
        "rejetées": MetadataValue.int(sum(r.rejected for r in rows)),
        "retards_et_rejets": MetadataValue.md(late_markdown(rows)),
    }


def report_status_written(year: int, today: dt.date, rows: Sequence[StatusRow], by: str) -> None:
    """``kpi status`` wrote ``campaign.status`` for ``year``: the instance records it as a
    materialisation of ``campaign/status`` (the UI shows when the table was last written, and
    by what), as a run of the asset would."""
    from dagster import AssetMaterialization

    from dagster_project.defs.instance import get_instance

    metadata = status_metadata(today, [year], rows, [summarize(rows, year)])
    metadata["écrit_par"] = MetadataValue.text(by)
    get_instance().report_runless_asset_event(
        AssetMaterialization(asset_key=STATUS_ASSET_KEY, metadata=metadata)
    )


campaign_status_job = define_asset_job(
    JOB_NAME,
    selection=AssetSelection.assets(STATUS_ASSET_KEY),
    description="État de la collecte des campagnes ouvertes (table campaign.status, retards).",
)


@schedule(
    name=SCHEDULE_NAME,
    job=campaign_status_job,
    cron_schedule=CRON,
    execution_timezone=TIMEZONE,
    default_status=DefaultScheduleStatus.STOPPED,
    description=(
        "Chaque matin à 7 h, pendant une campagne ouverte : met à jour campaign.status et "
        "signale les livraisons en retard ou rejetées."
    ),
)
def campaign_status_daily(context: ScheduleEvaluationContext, sources: SourcesResource):
    today = sources.today_date()
    found = open_campaigns(Path(sources.path), today)
    invalid = ""
    if found.errors:
        invalid = " ; fichier(s) de campagne invalide(s) : " + ", ".join(
            str(e.path) for e in found.errors
        )
    if not found.campaigns:
        return SkipReason(f"aucune campagne ouverte au {_fr(today)}{invalid}")
    years = ",".join(str(y) for y in found.years)
    return RunRequest(tags={"kpi/trigger": "schedule", "kpi/campaigns": years})
