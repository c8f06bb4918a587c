-- title: 잔액 있는 휴면 카드 / Dormant cards with a balance
-- description: 해지되지 않았고, 지정한 일수 이상 승인 결제가 없으며(한 번도 안 쓴 카드는 발급일부터), 지정한 잔액 이상을 가진 카드. 카드 수와 잔액 합계는 표 위에 보입니다. / Cards not closed, without an approved payment for at least the given number of days (counted from issue when never used), holding at least the given balance. Their count and total balance are shown above the table.
-- param: as_of date default=today label="기준일 / As of"
-- param: idle_days number default=90 min=1 label="미사용 일수 / Days without use"
-- param: min_balance number default=10000 min=0 step=1000 label="최소 잔액(원) / Minimum balance (KRW)"
-- totals: balance_krw
WITH last_use AS (
    SELECT card_id, max(created_at) AS last_payment_at
    FROM payments
    WHERE status = 'approved'
    GROUP BY card_id
),
scored AS (
    SELECT
        c.card_id,
        c.product,
        c.status,
        c.balance_krw,
        CAST(timezone('Asia/Seoul', c.issued_at) AS DATE)         AS issued_on,
        CAST(timezone('Asia/Seoul', l.last_payment_at) AS DATE)   AS last_payment_on,
        date_diff('day',
                  CAST(timezone('Asia/Seoul', coalesce(l.last_payment_at, c.issued_at)) AS DATE),
                  $as_of)                                           AS idle_days
    FROM cards AS c
    LEFT JOIN last_use AS l USING (card_id)
    WHERE c.status <> 'closed'
)
SELECT
    card_id,
    product,
    status,
    balance_krw,
    issued_on,
    last_payment_on,
    idle_days
FROM scored
WHERE idle_days >= $idle_days
  AND balance_krw >= $min_balance
ORDER BY balance_krw DESC, card_id
