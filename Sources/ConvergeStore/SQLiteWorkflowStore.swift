import Csqlite3
