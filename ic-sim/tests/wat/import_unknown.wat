;; Imports a function the IC does not provide: install must fail with IC0505,
;; "Module imports function 'not_a_function' from 'ic0' that is not exported by the runtime."
(module
  (import "ic0" "not_a_function" (func $not_a_function))
  (memory 1))
