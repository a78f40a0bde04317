// Command badbatch is BadBatch's single binary:
//
//	badbatch serve   [--data-dir ./data] [--addr 127.0.0.1:8080] [--tokens-file F] [--sync always|interval|none] ...
//	badbatch append  STREAM [FILE]      lines or NDJSON from stdin or FILE, in batches
//	badbatch read    STREAM [--from N] [--follow]
//	badbatch tail    STREAM             (read --follow --from latest)
//	badbatch streams
//	badbatch cursor  get|set STREAM NAME [OFFSET]
//	badbatch verify  --data-dir D [--repair]
//	badbatch bench   [--quick|--full] ...   the benchmark suite (go run ./bench/cmd/bbbench), from a source checkout
//
// Every flag can also come from an environment variable named BADBATCH_ and
// the flag's name in upper case with dashes as underscores
// (BADBATCH_DATA_DIR, BADBATCH_ADDR, BADBATCH_SERVER, BADBATCH_TOKEN...). A
// flag given on the command line wins over the environment.
//
// The command only turns flags into options and calls the packages
// (storage.Open, httpapi.New, httpapi/client); it holds no logic of its
// own beyond the verification report and the terminal progress bar.
package main
