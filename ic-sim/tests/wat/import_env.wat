;; Imports a real System API function from module `env` instead of `ic0`: install must fail with
;; IC0505, 'Module imports function "msg_reply" from "env", expected to be imported from one of
;; ["ic0"] instead.'
(module
  (import "env" "msg_reply" (func $msg_reply))
  (memory 1))
