-- title: 월별 충전 경로 비중 / Top-up channel mix per month
-- description: 월(한국 시간)별 충전 금액에서 각 충전 경로가 차지하는 비중. / Share of each channel in the month's top-up amount (Asia/Seoul months).
-- param: period daterange default=last_180_days label="기간 / Period"
-- chart: bar x=month y=share_pct color=channel
-- totals: topups, amount_krw
WITH t AS (
    SELECT CAST(date_trunc('month', timezone('Asia/Seoul', created_at)) AS DATE) AS month, channel, amount_krw
    FROM topups
    WHERE timezone('Asia/Seoul', created_at) >= $period_start
      AND timezone('Asia/Seoul', created_at) < $period_end + INTERVAL 1 DAY
)
SELECT
    month,
    channel,
    count(*)                                                                AS topups,
    CAST(sum(amount_krw) AS BIGINT)                                         AS amount_krw,
    round(100.0 * sum(amount_krw) / sum(sum(amount_krw)) OVER (PARTITION BY month), 1) AS share_pct
FROM t
GROUP BY month, channel
ORDER BY month, channel
