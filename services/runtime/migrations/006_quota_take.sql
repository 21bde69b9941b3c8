-- A rolling-window reservation in one round trip, for the publish that fits (nearly all): lock
-- the bucket, count its window, take or refuse. The ledger's detailed path (lock, read every
-- row, insert, in one transaction of five round trips) is left for a refusal, which must say
-- when the window reopens. In a VOLATILE function under READ COMMITTED each statement takes a
-- new snapshot, so the count made after the lock sees every reservation committed under it.
CREATE FUNCTION quota_take_rolling(
    p_bucket text, p_scope text, p_key text, p_units integer, p_now timestamptz,
    p_start timestamptz, p_forget_before timestamptz, p_default_limit integer,
    p_observed_used integer, p_observed_limit integer
) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_used bigint;
    v_limit integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('quota:' || p_bucket || ':' || p_scope, 0));
    IF EXISTS (SELECT 1 FROM quota_reservations
               WHERE bucket = p_bucket AND scope = p_scope AND reservation_key = p_key
                 AND reserved_at > p_start) THEN
        RETURN true;  -- already counted in the window (a retry, a redelivery)
    END IF;
    SELECT COALESCE(sum(units), 0) INTO v_used FROM quota_reservations
     WHERE bucket = p_bucket AND scope = p_scope AND reserved_at > p_start;
    SELECT quota_total INTO v_limit FROM quota_limits WHERE bucket = p_bucket AND scope = p_scope;
    v_limit := COALESCE(v_limit, p_default_limit);
    IF p_observed_used IS NOT NULL THEN  -- the platform's own count: the larger use wins
        v_used := GREATEST(v_used, p_observed_used);
        v_limit := p_observed_limit;
    END IF;
    IF v_used + p_units > v_limit THEN
        RETURN false;
    END IF;
    DELETE FROM quota_reservations WHERE bucket = p_bucket AND scope = p_scope AND reserved_at < p_forget_before;
    INSERT INTO quota_reservations (bucket, scope, reservation_key, units, reserved_at)
    VALUES (p_bucket, p_scope, p_key, p_units, p_now)
    ON CONFLICT (bucket, scope, reservation_key) DO UPDATE
        SET units = EXCLUDED.units, reserved_at = EXCLUDED.reserved_at;
    RETURN true;
END
$$;
