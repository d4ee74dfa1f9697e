;; A module whose start function traps (`unreachable`): installing or upgrading to it must fail
;; with IC0502 and, for an upgrade, keep the old module and state.
(module
  (func $start unreachable)
  (start $start))
