-- The call sweep looks up whether an undecided call's expired wrap-up is already in the
-- staff audit (action 'wrap_up_expired', target the call id) on every pass.
CREATE INDEX staff_audit_action_target ON staff_audit (action, target);
