-- title: 연령대별 객단가·이용 빈도 / Average ticket and use per card by age band
-- description: 기간 안 승인 결제를 카드 소유자의 연령대(기간 마지막 해 기준 나이)로 나눕니다. 회원은 가명 처리된 회원 번호로 연결하고, 회원 정보가 없는 카드는 '알 수 없음'으로 셉니다. / Approved payments in the period by the card holder's age band (age reached in the period's last year; members joined through the pseudonymised member id). Cards without a member on file count as Unknown.
-- param: period daterange default=last_30_days label="기간 / Period"
-- chart: bar x=age_band y=avg_ticket_krw
-- totals: payments, amount_krw
WITH paid AS (
    SELECT p.card_id, p.amount_krw, year($period_end) - mb.birth_year AS age
    FROM payments AS p
    LEFT JOIN cards AS c USING (card_id)
    LEFT JOIN members AS mb ON mb.member_id = c.member_id
    WHERE p.status = 'approved'
      AND timezone('Asia/Seoul', p.created_at) >= $period_start
      AND timezone('Asia/Seoul', p.created_at) < $period_end + INTERVAL 1 DAY
),
banded AS (
    SELECT
        card_id,
        amount_krw,
        CASE
            WHEN age IS NULL THEN 99
            WHEN age < 20 THEN 10
            WHEN age >= 60 THEN 60
            ELSE age // 10 * 10
        END AS band_order
    FROM paid
)
SELECT
    CASE band_order
        WHEN 99 THEN 'unknown'
        WHEN 10 THEN '~19'
        WHEN 60 THEN '60+'
        ELSE CAST(band_order AS VARCHAR) || '-' || CAST(band_order + 9 AS VARCHAR)
    END                                                       AS age_band,
    count(DISTINCT card_id)                                   AS active_cards,
    count(*)                                                  AS payments,
    CAST(sum(amount_krw) AS BIGINT)                           AS amount_krw,
    CAST(round(sum(amount_krw) / count(*)) AS BIGINT)         AS avg_ticket_krw,
    round(count(*) / count(DISTINCT card_id), 2)              AS tx_per_active_card
FROM banded
GROUP BY band_order
ORDER BY band_order
