-- title: 잔액 불일치 카드 / Cards whose balance does not match their movements
-- description: 카드별로 보유 잔액과 충전 − 승인 결제 + 환불을 비교합니다. 변경 직후에는 잠깐 차이가 보일 수 있고, 계속 남는 차이는 확인이 필요합니다. / Balance on file against top-ups − approved payments + refunds, per card. Right after a change the pipeline may briefly show a gap; a gap that stays needs a look.
-- param: min_difference number default=1 min=0 label="최소 차이(원) / Minimum difference (KRW)"
-- totals: difference_krw
WITH moves AS (
    SELECT card_id, amount_krw AS topup, 0 AS payment, 0 AS refund FROM topups
    UNION ALL
    SELECT card_id, 0, amount_krw, 0 FROM payments WHERE status = 'approved'
    UNION ALL
    SELECT card_id, 0, 0, amount_krw FROM refunds
),
per_card AS (
    SELECT card_id, sum(topup) AS topups_krw, sum(payment) AS payments_krw, sum(refund) AS refunds_krw
    FROM moves
    GROUP BY card_id
)
SELECT
    c.card_id,
    c.product,
    c.status,
    c.balance_krw,
    CAST(coalesce(m.topups_krw, 0) AS BIGINT)   AS topups_krw,
    CAST(coalesce(m.payments_krw, 0) AS BIGINT) AS payments_krw,
    CAST(coalesce(m.refunds_krw, 0) AS BIGINT)  AS refunds_krw,
    CAST(coalesce(m.topups_krw, 0) - coalesce(m.payments_krw, 0) + coalesce(m.refunds_krw, 0) AS BIGINT) AS expected_balance_krw,
    CAST(c.balance_krw - (coalesce(m.topups_krw, 0) - coalesce(m.payments_krw, 0) + coalesce(m.refunds_krw, 0)) AS BIGINT) AS difference_krw
FROM cards AS c
LEFT JOIN per_card AS m USING (card_id)
WHERE abs(c.balance_krw - (coalesce(m.topups_krw, 0) - coalesce(m.payments_krw, 0) + coalesce(m.refunds_krw, 0))) >= $min_difference
ORDER BY abs(difference_krw) DESC, c.card_id
