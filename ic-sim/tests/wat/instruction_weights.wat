;; Instruction weights (tests/instructions.rs). Each update takes a u32 argument (raw
;; little-endian), does one operation with it and replies with ic0.performance_counter(0) as a
;; raw u64, so two calls differ only by the operation's cost:
;;   fill n   memory.fill of n bytes      copy n   memory.copy of n bytes
;;   add n    one i32.add                 div n    one i32.div_u
(module
  (import "ic0" "msg_arg_data_copy" (func $msg_arg_data_copy (param i32 i32 i32)))
  (import "ic0" "msg_reply_data_append" (func $msg_reply_data_append (param i32 i32)))
  (import "ic0" "msg_reply" (func $msg_reply))
  (import "ic0" "performance_counter" (func $performance_counter (param i32) (result i64)))
  (memory 4)

  (func $arg (result i32)
    (call $msg_arg_data_copy (i32.const 0) (i32.const 0) (i32.const 4))
    (i32.load (i32.const 0)))

  (func $reply_counter
    (i64.store (i32.const 16) (call $performance_counter (i32.const 0)))
    (call $msg_reply_data_append (i32.const 16) (i32.const 8))
    (call $msg_reply))

  (func $fill
    (memory.fill (i32.const 1024) (i32.const 7) (call $arg))
    (call $reply_counter))

  (func $copy
    (memory.copy (i32.const 65536) (i32.const 1024) (call $arg))
    (call $reply_counter))

  (func $add
    (i32.store (i32.const 32) (i32.add (call $arg) (i32.const 3)))
    (call $reply_counter))

  (func $div
    (i32.store (i32.const 32) (i32.div_u (call $arg) (i32.const 3)))
    (call $reply_counter))

  (export "canister_update fill" (func $fill))
  (export "canister_update copy" (func $copy))
  (export "canister_update add" (func $add))
  (export "canister_update div" (func $div)))
