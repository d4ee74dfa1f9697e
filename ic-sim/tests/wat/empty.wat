;; The smallest valid canister: no memory, no methods. Installs fine; every call to it fails with
;; "Canister has no update method ..." (IC0536).
(module)
