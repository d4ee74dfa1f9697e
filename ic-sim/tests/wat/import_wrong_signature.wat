;; Imports ic0.msg_reply with a parameter it does not have (the real one is [] -> []): install
;; must fail with IC0505, "invalid function signature ... for 'msg_reply'".
(module
  (import "ic0" "msg_reply" (func $msg_reply (param i32)))
  (memory 1))
