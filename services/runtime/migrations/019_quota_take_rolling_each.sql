-- The rolling-window takes that arrive together (a batch's publishes, one per account) in one
-- round trip: each is migration 006's take, in the order given, inside this one statement, so
-- its bucket's lock is held until the statement ends. The caller orders them by bucket and
-- scope, the order every other taker locks them in: takers never wait on each other in a cycle.
-- One refused is answered false and the others still take what fits.
CREATE FUNCTION quota_take_rolling_each(
    p_buckets text[], p_scopes text[], p_keys text[], p_units integer[], p_starts timestamptz[],
    p_default_limits integer[], p_observed_used integer[], p_observed_limits integer[],
    p_now timestamptz, p_keep interval
) RETURNS boolean[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_taken boolean[] := '{}';
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_buckets, 1), 0) LOOP
        v_taken := v_taken || quota_take_rolling(
            p_buckets[i], p_scopes[i], p_keys[i], p_units[i], p_now, p_starts[i], p_starts[i] - p_keep,
            p_default_limits[i], p_observed_used[i], p_observed_limits[i]);
    END LOOP;
    RETURN v_taken;
END
$$;
