"""Pipeline: is the data flowing? Worker heartbeat, tables, partitions, batches, dead letters, alerts.

Layout only; the reads are in dashboard/pipeline_health.py. The alert history
comes from the watchdog's file and is shown even when the warehouse cannot be
read — that is exactly when someone opens this page.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import streamlit as st

from dashboard import charts, downloads, freshness, i18n, tables
from dashboard import pipeline_health as ph
from dashboard.access import current_person
from dashboard.access.enforce import stop_no_access
from dashboard.charts import ChartSpec
from dashboard.i18n import pick, t
from dashboard.page_guard import page_guard
from dashboard.warehouse import app_warehouse

wh = app_warehouse()
st.title(t("page_pipeline"))
if not current_person().is_admin:  # every table by name, and the dead letters' contents: for admins
    stop_no_access()
now = datetime.now(timezone.utc)
alert_after = wh.config.alerts.alert_after_seconds if wh.config.alerts else 120.0

DEAD_LETTER_COLUMNS = {  # the dead-letter file's headers, like the table above it
    "received_at": "받은 시각 / Received", "topic": "토픽 / Topic", "partition": "파티션 / Partition",
    "offset": "오프셋 / Offset", "batch_id": "배치 번호 / Batch id", "reason": "사유 / Reason",
    "replayed_at": "재처리 시각 / Replayed at", "last_replay_reason": "마지막 재처리 결과 / Last replay", "key": "키 / Key",
    "raw_text": "내용 / Payload", "raw_bytes": "크기(바이트) / Bytes", "raw_sha256": "SHA-256 / SHA-256",
}
PARTITION_STATES = {"ok": "정상 / OK", "stopped": "중지됨 / Stopped"}
STATE_WORDS = {
    "running": "적재 중 / running", "idle": "대기 중 (새 메시지 없음) / idle (no new messages)",
    "broker_unreachable": "브로커 연결 안 됨 / broker unreachable", "degraded": "일부 파티션 중지 / degraded",
    "stopped": "중지됨 / stopped", "missing": "하트비트 없음 / no heartbeat",
}
WORKER_VERDICTS = {  # health.lake_worker_verdict: the watchdog's rule, per worker of a lake
    "ok": "정상 / ok", "late": "늦음 / late", "down": "멈춤 / down", "missing": "하트비트 없음 / no heartbeat",
    "holds_none": "파티션 없음 (감시 대상 아님) / holds none (not judged)",
}


def fmt_time(v) -> str:
    if v is None or (not isinstance(v, datetime) and pd.isna(v)):
        return "—"
    return i18n.fmt_datetime(v.to_pydatetime() if hasattr(v, "to_pydatetime") else v)


def lease_text(until: datetime | None) -> str:
    """A lease's end relative to now: leases last seconds, so a clock time would say nothing."""
    if until is None:
        return "—"
    left = (until - now).total_seconds()
    if left > 0:
        return pick(f"{i18n.fmt_duration(left)} 남음 / in {i18n.fmt_duration(left)}")
    return pick(f"만료됨 ({i18n.fmt_ago(-left)}) / expired ({i18n.fmt_ago(-left)})")


def show_alerts() -> None:
    st.subheader(pick("알림 기록 / Alert history"))
    history = ph.alert_history(wh.config.alerts.history_path if wh.config.alerts else None)
    if history.empty:
        st.caption(pick("아직 보낸 알림이 없습니다. / No alerts so far."))
        return
    shown = pd.DataFrame({
        pick("시각 / At"): [fmt_time(v) for v in history["at"]],
        pick("종류 / Kind"): [pick("경보 / alert") if k == "alert" else pick("복구 / recovery") if k == "recovery" else str(k)
                            for k in history["kind"]],
        pick("문제 / Problem"): history["problem"],
        pick("제목 / Subject"): history["subject"],
        pick("전달 / Delivered"): [pick("메일 발송 / mailed") if d is True else (pick("로그만 / log only") if c == "log" else pick("대기·실패 / pending or failed"))
                               for d, c in zip(history["delivered"], history["channel"])],
        pick("내용 / Body"): history["body"],
    })
    st.dataframe(shown, hide_index=True, width="stretch", placeholder=i18n.EMPTY, key="p_alerts")


guarded = page_guard(wh, before_stop=show_alerts)


if not wh.exists():
    st.info(t("no_data"))
    show_alerts()
    st.stop()
meta = guarded(ph.meta_tables, wh.query)
if "heartbeat" not in meta:
    st.info(pick("워커가 아직 장부(_meta)를 만들지 않았습니다 — 첫 적재를 기다려 주세요. / "
                 "The worker has not created its bookkeeping (_meta) yet — wait for its first batch."))
    show_alerts()
    st.stop()

# ── the chain in words first: is everything here? ─────────────────────────
chain, problems = guarded(ph.exporter_problems, wh.query, now, alert_after)
state = guarded(freshness.chain_state_from, chain, guarded(freshness.landed_rows, wh))
if state.catching_up:
    st.warning(t("catching_up", pct=state.loading_percent), icon=":material/hourglass_top:")
elif not problems and chain.heartbeat_age is not None and chain.heartbeat_age.total_seconds() <= alert_after:
    last = guarded(freshness.freshness, wh, now)
    if last.age_seconds is not None:
        st.success(t("all_arrived", ago=i18n.fmt_ago(last.age_seconds)), icon=":material/check_circle:")
for problem in (problems or {}).values():
    st.error(f"**{problem.title}**\n\n{problem.body}", icon=":material/error:")
for ex in chain.exporters:
    ago = i18n.fmt_ago(max(0.0, ex.age(now).total_seconds()))
    state_key = f"exporter_state_{ex.state}"
    try:
        state_text = t(state_key)
    except KeyError:
        state_text = ex.state
    st.caption(t("exporter_line", name=ex.exporter, state=state_text, ago=ago))
st.subheader(t("completeness_title"))
for line in state.lines():
    (st.warning if state.differences else st.caption)(line)
if chain.completeness:
    st.dataframe(pd.DataFrame({
        pick("테이블 / Table"): [c.table for c in chain.completeness],
        pick("날짜 / Day"): [c.day for c in chain.completeness],
        pick("원본 행 수 / Source rows"): [c.source_rows for c in chain.completeness],
        pick("웨어하우스 행 수 / Warehouse rows"): [c.warehouse_rows for c in chain.completeness],
        pick("차이 / Difference"): [c.difference for c in chain.completeness],
        pick("기준 시각 / As of"): [fmt_time(c.as_of) for c in chain.completeness],
    }), hide_index=True, width="stretch", placeholder=i18n.EMPTY, key="p_completeness")

# ── worker heartbeat (technical detail) ────────────────────────────────────
beat = guarded(ph.heartbeat, wh.query, now)
verdict = beat.verdict(alert_after)
state_text = pick(STATE_WORDS.get(beat.state, beat.state))
age = i18n.fmt_ago(beat.age_seconds) if beat.age_seconds is not None else "—"
# On a lake the line judges the worker with the oldest beat among those holding partitions (the watchdog's rule),
# so it names that worker; the Workers table below has each one.
named = f" {beat.worker_id}" if beat.worker_id else ""
line = pick(f"워커{named}: {state_text} · 마지막 신호 {age} / Worker{named}: {state_text} · last beat {age}")
if verdict == "ok":
    st.success(line, icon=":material/check_circle:")
elif verdict == "late":
    st.warning(line, icon=":material/schedule:")
else:
    st.error(line + pick(f" — {i18n.fmt_duration(alert_after)} 넘게 신호가 없으면 알림을 보냅니다 / "
                         f" — an alert goes out after {i18n.fmt_duration(alert_after)} without a beat"), icon=":material/error:")
c1, c2, c3 = st.columns(3)
c1.metric(pick("마지막 배치 / Last batch"), "—" if beat.last_batch_id is None else f"#{beat.last_batch_id}")
c2.metric(pick("밀린 메시지 / Lag (messages)"), "—" if beat.lag_messages is None else i18n.fmt_number(beat.lag_messages))
c3.metric(pick("마지막 신호 / Last beat"), age)
st.caption(" · ".join(x for x in (
    pick(f"시작 {fmt_time(beat.started_at)} / started {fmt_time(beat.started_at)}"),
    f"{beat.host or '?'} pid {beat.pid or '?'}",
    beat.message or "",
) if x))

# ── workers of a lake: who holds which partitions (leases) ─────────────────
if wh.is_lake and "leases" in meta:
    st.subheader(pick("워커 / Workers"))
    workers = guarded(ph.lake_workers, wh.query, now, alert_after)
    st.dataframe(pd.DataFrame({
        pick("워커 / Worker"): [w.worker for w, _ in workers],
        pick("상태 / State"): [pick(WORKER_VERDICTS.get(v, f"{v} / {v}")) for _, v in workers],
        pick("파티션 수 / Partitions"): [len(w.partitions) for w, _ in workers],
        pick("맡은 파티션 / Partitions held"): [", ".join(w.partitions) for w, _ in workers],
        pick("마지막 신호 / Last beat"): [i18n.fmt_ago((now - w.beat_at).total_seconds()) if w.beat_at else "—"
                                       for w, _ in workers],
        pick("임대 만료 / Lease expires"): [lease_text(w.lease_until) for w, _ in workers],
        pick("호스트 / Host"): [f"{w.host or '?'} pid {w.pid or '?'}" for w, _ in workers],
    }), hide_index=True, width="stretch", placeholder=i18n.EMPTY, key="p_workers")
    st.caption(pick(
        "워커들은 파티션을 임대(lease)로 나눠 맡습니다. 상태는 감시(watchdog)와 같은 규칙으로, 각 워커의 마지막 신호가 "
        f"{i18n.fmt_duration(alert_after)} 넘게 없으면 멈춤입니다. 임대가 만료된 파티션은 다른 워커가 이어받습니다. / "
        "The workers share the partitions by leases. The state follows the watchdog's rule: a worker without a beat "
        f"for {i18n.fmt_duration(alert_after)} is down. Partitions whose lease expired are taken over by another worker."))

# ── tables ─────────────────────────────────────────────────────────────────
st.subheader(pick("테이블 / Tables"))
landed = guarded(ph.landed_tables, wh.query)
health = guarded(ph.table_health, wh.query, landed, now)
if health.empty:
    st.caption(pick("아직 적재된 테이블이 없습니다. / No tables landed yet."))
else:
    st.dataframe(pd.DataFrame({
        pick("테이블 / Table"): health["table"],
        pick("행 수 / Rows"): health["rows"],
        pick("삭제 표시 / Tombstones"): health["tombstones"],
        pick("마지막 적재 / Last landed"): [fmt_time(v) for v in health["last_landed_at"]],
        pick("원본 최근 변경 / Last source change"): [fmt_time(v) for v in health["last_change_at"]],
        pick("신선도 / Freshness"): [i18n.fmt_ago(s) if s is not None and s == s else "—" for s in health["freshness_seconds"]],
    }), hide_index=True, width="stretch", placeholder=i18n.EMPTY, key="p_tables",
        column_config={pick("행 수 / Rows"): st.column_config.NumberColumn(format="localized"),
                       pick("삭제 표시 / Tombstones"): st.column_config.NumberColumn(format="localized")})

# ── lake files (lake mode only) ────────────────────────────────────────────
if wh.is_lake:
    st.subheader(pick("레이크 파일 / Lake files"))
    files = guarded(ph.lake_files, wh.query)
    kept = guarded(ph.last_maintenance, wh.query) if "maintenance" in meta else pd.DataFrame()
    if kept.empty:
        st.caption(pick("아직 정리(maintain)를 한 적이 없습니다 — `python -m ingest maintain` 이 작은 파일을 합칩니다. / "
                        "No maintenance yet — `python -m ingest maintain` merges the small files."))
    else:
        m = kept.iloc[0]
        st.caption(pick(f"마지막 정리 {fmt_time(m['started_at'])}: 파일 {int(m['files_before']):,} → {int(m['files_after']):,}개, "
                        f"스냅숏 {int(m['snapshots_expired']):,}개 만료 / Last maintenance {fmt_time(m['started_at'])}: "
                        f"{int(m['files_before']):,} → {int(m['files_after']):,} files, {int(m['snapshots_expired']):,} snapshots expired"))
    if not files.empty:
        st.dataframe(pd.DataFrame({pick("테이블 / Table"): files["table"], pick("데이터 파일 / Data files"): files["files"]}),
                     hide_index=True, width="stretch", key="p_lake_files")

# ── partitions ─────────────────────────────────────────────────────────────
st.subheader(pick("파티션별 지연 / Lag per partition"))
parts = guarded(ph.partition_lag, wh.query) if "partitions" in meta else pd.DataFrame()
if parts.empty:
    st.caption(pick("파티션 정보가 아직 없습니다. / No partition information yet."))
else:
    for row in parts[parts["state"] != "ok"].itertuples():
        st.error(pick(f"{row.topic} #{row.partition} 중지: {row.reason} / {row.topic} #{row.partition} stopped: {row.reason}"),
                 icon=":material/block:")
    st.dataframe(pd.DataFrame({
        pick("토픽 / Topic"): parts["topic"], pick("파티션 / Partition"): parts["partition"],
        pick("다음 오프셋 / Next offset"): parts["next_offset"], pick("최고 수위 / High watermark"): parts["high_watermark"],
        pick("지연(메시지) / Lag (messages)"): parts["lag_messages"], pick("상태 / State"): [pick(PARTITION_STATES.get(v, f"{v} / {v}")) for v in parts["state"]],
        pick("사유 / Reason"): parts["reason"].fillna(""), pick("갱신 / Updated"): [fmt_time(v) for v in parts["updated_at"]],
    }), hide_index=True, width="stretch", placeholder=i18n.EMPTY, key="p_parts")

# ── batches over time ──────────────────────────────────────────────────────
st.subheader(pick("배치 기록 / Batches over time"))
batches = guarded(ph.batch_history, wh.query) if "batches" in meta else pd.DataFrame()
if batches.empty:
    st.caption(pick("아직 배치가 없습니다. / No batches yet."))
else:
    labels = {"committed_at": pick("커밋 시각 / Committed at"), "rows": pick("행 수 / Rows"),
              "seconds": pick("처리 시간(초) / Duration (s)")}
    titles = {"rows": pick("배치별 행 수 / Rows per batch"), "seconds": pick("배치별 처리 시간 / Duration per batch")}
    c1, c2 = st.columns(2)
    for box, measure, kind in ((c1, "rows", "bar"), (c2, "seconds", "line")):
        frame = pd.DataFrame({"x": batches["committed_at"], "value": batches[measure]})
        spec = ChartSpec(kind=kind, x="committed_at", y=measure, agg=charts.VALUES_AS_GIVEN, bucket="hour")
        fig = charts.figure(frame, spec, labels)
        fig.update_layout(title_text=titles[measure], height=300)
        box.plotly_chart(fig, key=f"p_batches_{measure}", width="stretch")
    total_rows = int(batches["rows"].sum())
    total_secs = float(batches["seconds"].sum())
    st.caption(pick(f"최근 배치 {len(batches)}개: {i18n.fmt_number(total_rows)}행, {total_secs:.1f}초 / "
                    f"last {len(batches)} batches: {i18n.fmt_number(total_rows)} rows in {total_secs:.1f} s"))

# ── dead letters ───────────────────────────────────────────────────────────
st.subheader(pick("처리 못 한 메시지 (데드레터) / Dead letters"))
dead = guarded(ph.dead_letters, wh.query) if "dead_letters" in meta else pd.DataFrame()
if dead.empty:
    st.caption(pick("없습니다. / None."))
else:
    remaining, replayed = guarded(ph.dead_letter_counts, wh.query)
    st.caption(pick(
        f"남은 것 {i18n.fmt_number(remaining)}건 · 재처리되어 적재된 것 {i18n.fmt_number(replayed)}건. 설정이나 원본 스키마를 "
        "고친 뒤 `python -m ingest replay` 로 남은 것을 다시 처리할 수 있습니다. / "
        f"{i18n.fmt_number(remaining)} remaining · {i18n.fmt_number(replayed)} replayed and landed. After fixing the "
        "configuration or the source schema, `python -m ingest replay` lands the remaining ones that now pass."))
    st.dataframe(pd.DataFrame({
        pick("상태 / State"): [pick("재처리됨 / replayed") if pd.notna(v) else pick("남음 / remaining")
                             for v in dead["replayed_at"]],
        pick("받은 시각 / Received"): [fmt_time(v) for v in dead["received_at"]],
        pick("토픽 / Topic"): dead["topic"], pick("파티션 / Partition"): dead["partition"], pick("오프셋 / Offset"): dead["offset"],
        pick("사유 / Reason"): dead["reason"],
        pick("마지막 재처리 결과 / Last replay"): [v if isinstance(v, str) else None for v in dead["last_replay_reason"]],
        pick("크기(바이트) / Bytes"): dead["raw_bytes"],
        pick("내용 (앞부분) / Payload (start)"): dead["raw_preview"],
    }), hide_index=True, width="stretch", placeholder=i18n.EMPTY, key="p_dead")
    full = dead[["received_at", "topic", "partition", "offset", "batch_id", "reason", "replayed_at", "last_replay_reason",
                 "key", "raw_text", "raw_bytes", "raw_sha256"]]
    views = tables.views_for_frame(full, DEAD_LETTER_COLUMNS)
    downloads.download_buttons(
        lambda: pa.Table.from_pandas(full, preserve_index=False),
        views,
        basename=f"dead_letters_{datetime.now(i18n.SEOUL):%Y-%m-%d}",
        filters_text=[pick("데드레터 전체 (원본 내용 포함) / all dead letters (full payload)")],
        total_rows=len(full), key="p_dead_dl", title="_meta.dead_letters",
    )

show_alerts()
