-- title: 일별 충전 금액 / Daily top-ups
-- description: 일자(한국 시간)·충전 경로별 충전 건수와 금액. / Number and amount of top-ups per day (Asia/Seoul) and channel.
-- param: period daterange default=last_30_days label="기간 / Period"
-- param: channel choice label="충전 경로 / Channel" from=SELECT DISTINCT channel FROM topups
-- chart: line x=day y=amount_krw color=channel
-- totals: topups, amount_krw
-- Days are Asia/Seoul calendar days, whatever the server's time zone.
WITH t AS (
    SELECT timezone('Asia/Seoul', created_at) AS local_ts, channel, amount_krw
    FROM topups
)
SELECT
    CAST(local_ts AS DATE)          AS day,
    channel,
    count(*)                        AS topups,
    CAST(sum(amount_krw) AS BIGINT) AS amount_krw
FROM t
WHERE local_ts >= $period_start
  AND local_ts < $period_end + INTERVAL 1 DAY
  AND ($channel IS NULL OR channel = $channel)
GROUP BY ALL
ORDER BY day, channel
