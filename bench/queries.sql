-- Representative analyst queries, timed by bench/run.py on the published copy when
-- docs/analysts.md has no example queries (```sql blocks). One query per block, each
-- introduced by a "-- name:" line. Year 2025; communes are looked up from dim_communes so
-- that the same queries run on every scale (real or synthetic referential).

-- name: p1_dashboard
select indicator_id, label_fr, value, unit, previous_year_value, change_pct, target_value
from marts.p1_indicators
where year = 2025 and code_insee is null
order by objective, indicator_id;

-- name: p2_commune_ranking
select commune_name, value, unit
from marts.p2_indicators
where indicator_id = 'residual_waste_per_inhabitant' and year = 2025 and code_insee is not null
order by value desc
limit 10;

-- name: p3_housing_by_objective
select objective, count(*) as values_count, sum(value) filter (where unit = 'dwellings') as dwellings
from marts.p3_indicators
where year = 2025 and code_insee is null
group by objective
order by objective;

-- name: p4_and_support
select 'P4' as priority, indicator_id, label_fr, value, unit from marts.p4_indicators where year = 2025
union all
select 'APPUI', indicator_id, label_fr, value, unit from marts.appui_indicators where year = 2025
order by 1, 2;

-- name: commune_profile
select i.priority, i.label_fr, f.value, f.unit
from marts.fct_indicator_values as f
join marts.dim_indicators as i using (indicator_id)
where f.year = 2025
  and f.code_insee = (select max(code_insee) from marts.dim_communes)
order by i.priority, i.label_fr;

-- name: fct_department_aggregate
select f.department, f.computation, count(*) as values_count,
       count(distinct f.indicator_id) as indicators, count(distinct f.code_insee) as communes
from marts.fct_indicator_values as f
where f.year = 2025
group by f.department, f.computation
order by values_count desc;
