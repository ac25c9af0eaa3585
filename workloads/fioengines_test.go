package workloads

import (
	"strings"
	"testing"
)

// TestEngineTargets: a job of fio's libiscsi, nbd or nfs engine runs, without --target, on
// the backend of the same protocol, at the URL the engine would connect to; what the
// backends cannot honour is an error naming it.
func TestEngineTargets(t *testing.T) {
	tests := []struct {
		name, text, want, err string
	}{
		// libiscsi: filename= is a libiscsi URL, ':' escaped as fio wants.
		{"libiscsi", `ioengine=libiscsi` + "\n" + `filename=iscsi\://127.0.0.1\:3260/iqn.2016-02.com.fio\:system\:fio/1`,
			"iscsi://127.0.0.1:3260/iqn.2016-02.com.fio:system:fio/1", ""},
		{"libiscsi default port", `ioengine=libiscsi` + "\n" + `filename=iscsi\://127.0.0.1/iqn.x\:t/0`, "iscsi://127.0.0.1/iqn.x:t/0", ""},
		{"libiscsi CHAP user", `ioengine=libiscsi` + "\n" + `filename=iscsi\://bench@127.0.0.1/iqn.x\:t/1`, "iscsi://bench@127.0.0.1/iqn.x:t/1", ""},
		{"libiscsi %-encoded target name", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x%3At/1`, "iscsi://h/iqn.x:t/1", ""},
		{"libiscsi header digest", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x\:t/1?header_digest=crc32c`, "iscsi://h/iqn.x:t/1?header_digest=crc32c", ""},
		{"libiscsi IPv6", `ioengine=libiscsi` + "\n" + `filename=iscsi\://[\:\:1]\:3260/iqn.x\:t/1`, "iscsi://[::1]:3260/iqn.x:t/1", ""},
		{"libiscsi in global", "[global]\nioengine=libiscsi\n[k]\n" + `filename=iscsi\://h/iqn.x\:t/2`, "iscsi://h/iqn.x:t/2", ""},
		{"libiscsi empty user", `ioengine=libiscsi` + "\n" + `filename=iscsi\://@h/iqn.x\:t/1`, "", "empty user name"},
		{"libiscsi no LUN", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x\:t`, "", "no LUN"},
		{"libiscsi empty LUN", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x\:t/`, "", "no LUN"},
		{"libiscsi LUN not a number", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x\:t/one`, "", `LUN "one" is not a number`},
		{"libiscsi extra path", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x\:t/1/2`, "", `LUN "1/2" is not a number`},
		{"libiscsi no target", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h//1`, "", "no target IQN"},
		{"libiscsi no host", `ioengine=libiscsi` + "\n" + `filename=iscsi\:///iqn.x\:t/1`, "", "no host"},
		{"libiscsi bad port", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h\:99999/iqn.x\:t/1`, "", `port "99999"`},
		{"libiscsi unknown URL option", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x\:t/1?foo=1`, "", `URL option "foo"`},
		{"libiscsi bad digest", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x\:t/1?header_digest=md5`, "", "header_digest=md5"},
		{"libiscsi mutual CHAP", `ioengine=libiscsi` + "\n" + `filename=iscsi\://h/iqn.x\:t/1?target_user=t`, "", "target_user: mutual (target) CHAP is not supported"},
		{"libiscsi iSER", `ioengine=libiscsi` + "\n" + `filename=iser\://h/iqn.x\:t/1`, "", "iSER (RDMA) is not supported"},
		{"libiscsi not a URL", "ioengine=libiscsi\nfilename=/dev/sdb", "", "takes a libiscsi URL"},
		{"libiscsi no filename", "ioengine=libiscsi", "", "ioengine=libiscsi needs filename=iscsi://"},
		{"libiscsi with directory", "ioengine=libiscsi\ndirectory=/d\n" + `filename=iscsi\://h/iqn.x\:t/1`, "", "which is no libiscsi URL"},

		// nbd: uri= is a libnbd URI; fio's nbd engine has no file.
		{"nbd", "ioengine=nbd\nuri=nbd://127.0.0.1:10809/vm", "nbd://127.0.0.1:10809/vm", ""},
		{"nbd default export", "ioengine=nbd\nuri=nbd://127.0.0.1", "nbd://127.0.0.1", ""},
		{"nbd unix socket", "ioengine=nbd\nuri=nbd+unix:///vm?socket=/run/nbd.sock", "nbd+unix:///vm?socket=/run/nbd.sock", ""},
		{"nbd unix socket default export", "ioengine=nbd\nuri=nbd+unix:///?socket=/tmp/s", "nbd+unix:///?socket=/tmp/s", ""},
		{"nbd unix socket no path", "ioengine=nbd\nuri=nbd+unix://?socket=/tmp/s", "nbd+unix:///?socket=/tmp/s", ""},
		{"nbd filename unused", "ioengine=nbd\nuri=nbd://h/e\nfilename=x", "nbd://h/e", ""},
		{"nbd no uri", "ioengine=nbd", "", "ioengine=nbd needs uri="},
		{"nbd TLS", "ioengine=nbd\nuri=nbds://h/e", "", "nbds:// (TLS from libnbd's certificate directory) is not mapped: give --target nbd://"},
		{"nbd TLS unix", "ioengine=nbd\nuri=nbds+unix:///e?socket=/s", "", "give --target nbd+unix://"},
		{"nbd vsock", "ioengine=nbd\nuri=nbd+vsock:///", "", "AF_VSOCK is not supported"},
		{"nbd PSK user", "ioengine=nbd\nuri=nbd://alice@h/e", "", `a user name (alice@) is libnbd's TLS-PSK user`},
		{"nbd TLS option", "ioengine=nbd\nuri=nbd://h/e?tls-certificates=/c", "", `URL option "tls-certificates"`},
		{"nbd socket with TCP", "ioengine=nbd\nuri=nbd://h/e?socket=/s", "", "socket= goes with nbd+unix"},
		{"nbd unix without socket", "ioengine=nbd\nuri=nbd+unix:///e", "", "nbd+unix needs socket=PATH"},
		{"nbd unix empty socket", "ioengine=nbd\nuri=nbd+unix:///?socket=", "", "nbd+unix needs socket=PATH"},
		{"nbd unix with host", "ioengine=nbd\nuri=nbd+unix://h/e?socket=/s", "", "nbd+unix:// takes no host"},
		{"nbd no host", "ioengine=nbd\nuri=nbd:///e", "", "no host"},
		{"nbd not an NBD URI", "ioengine=nbd\nuri=http://h/e", "", "not an NBD URI"},
		{"nbd bad port", "ioengine=nbd\nuri=nbd://h:0/e", "", `port "0"`},

		// nfs: the file is filename= (inside directory=) inside the export nfs_url= mounts.
		{"nfs", "ioengine=nfs\nnfs_url=nfs://127.0.0.1/export\nfilename=vm.img", "nfs://127.0.0.1/export/vm.img?export=/export&stable=unstable", ""},
		{"nfs ports", "ioengine=nfs\nnfs_url=nfs://127.0.0.1/export?nfsport=2049&mountport=20048\nfilename=vm.img",
			"nfs://127.0.0.1:2049/export/vm.img?export=/export&mountport=20048&stable=unstable", ""},
		{"nfs server:port", "ioengine=nfs\nnfs_url=nfs://127.0.0.1:2049/srv/nfs\nfilename=vm.img", "nfs://127.0.0.1:2049/srv/nfs/vm.img?export=/srv/nfs&stable=unstable", ""},
		{"nfs uid gid version", "ioengine=nfs\nnfs_url=nfs://h/e?uid=0&gid=0&version=3\nfilename=f", "nfs://h/e/f?export=/e&gid=0&stable=unstable&uid=0", ""},
		{"nfs directory", "ioengine=nfs\nnfs_url=nfs://h/e\ndirectory=sub\nfilename=f", "nfs://h/e/sub/f?export=/e&stable=unstable", ""},
		{"nfs directory before absolute filename", "ioengine=nfs\nnfs_url=nfs://h/e\ndirectory=/sub\nfilename=/f", "nfs://h/e/sub/f?export=/e&stable=unstable", ""},
		{"nfs directory only", "ioengine=nfs\nnfs_url=nfs://h/e\ndirectory=sub", "nfs://h/e/sub?export=/e&stable=unstable", ""},
		{"nfs export only", "ioengine=nfs\nnfs_url=nfs://h/e", "nfs://h/e?export=/e&stable=unstable", ""},
		{"nfs root export", "ioengine=nfs\nnfs_url=nfs://h/\nfilename=f", "nfs://h/f?export=/&stable=unstable", ""},
		{"nfs IPv6 nfsport", "ioengine=nfs\nnfs_url=nfs://[::1]/e?nfsport=2049\nfilename=f", "nfs://[::1]:2049/e/f?export=/e&stable=unstable", ""},
		{"nfs sync", "ioengine=nfs\nnfs_url=nfs://h/e\nfilename=f\nsync=1", "nfs://h/e/f?export=/e", ""},
		{"nfs no url", "ioengine=nfs\nfilename=f", "", "ioengine=nfs needs nfs_url="},
		{"nfs version 4", "ioengine=nfs\nnfs_url=nfs://h/e?version=4\nfilename=f", "", "version=4: vmstorbench's nfs backend speaks NFSv3 only"},
		{"nfs unknown option", "ioengine=nfs\nnfs_url=nfs://h/e?readahead=1\nfilename=f", "", `URL option "readahead"`},
		{"nfs port not a number", "ioengine=nfs\nnfs_url=nfs://h/e?mountport=x\nfilename=f", "", `mountport="x" is not a number`},
		{"nfs two ports", "ioengine=nfs\nnfs_url=nfs://h:1/e?nfsport=2\nfilename=f", "", "two NFS ports"},
		{"nfs user", "ioengine=nfs\nnfs_url=nfs://u@h/e\nfilename=f", "", "a user name is not supported"},
		{"nfs no path", "ioengine=nfs\nnfs_url=nfs://h\nfilename=f", "", "no export path"},
		{"nfs no server", "ioengine=nfs\nnfs_url=nfs:///e\nfilename=f", "", "no server"},
		{"nfs not a libnfs URL", "ioengine=nfs\nnfs_url=smb://h/e\nfilename=f", "", "not a libnfs URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			if !strings.HasPrefix(text, "[") {
				text = "[j]\n" + text
			}
			jobs, err := parseTest(text + "\n")
			if err != nil {
				t.Fatal(err)
			}
			got, note, err := jobs[0].FileTarget()
			switch {
			case tt.err == "" && (err != nil || got != tt.want):
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			case tt.err == "" && !strings.Contains(note, " runs on "+tt.want):
				t.Errorf("note %q does not say what runs on %s", note, tt.want)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("got %q, %v; want an error with %q", got, err, tt.err)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("error of more than one line: %q", err)
			}
		})
	}
}

// TestEngineTargetNotes: the note names the job options the target comes from, and those
// fio's engine would not use.
func TestEngineTargetNotes(t *testing.T) {
	tests := []struct{ text, note, replaced string }{
		{"ioengine=libiscsi\n" + `filename=iscsi\://h/iqn.x\:t/1`,
			"ioengine=libiscsi filename=iscsi://h/iqn.x:t/1 runs on iscsi://h/iqn.x:t/1",
			"filename=iscsi://h/iqn.x:t/1 replaced by the target"},
		{"ioengine=nbd\nuri=nbd://h/e\nfilename=x",
			"ioengine=nbd uri=nbd://h/e (filename=x unused, as by fio's nbd engine) runs on nbd://h/e",
			"ioengine=nbd uri=nbd://h/e filename=x replaced by the target"},
		{"ioengine=nfs\nnfs_url=nfs://h/e\nfilename=f\ndirectory=d",
			"ioengine=nfs nfs_url=nfs://h/e filename=f directory=d runs on nfs://h/e/d/f?export=/e&stable=unstable",
			"ioengine=nfs nfs_url=nfs://h/e filename=f replaced by the target"},
		{"ioengine=nfs\nnfs_url=nfs://h/e\nfilename=f\nsync=1",
			"ioengine=nfs nfs_url=nfs://h/e filename=f runs on nfs://h/e/f?export=/e (sync=sync: FILE_SYNC writes, where fio's nfs engine ignores sync= and writes UNSTABLE)",
			"ioengine=nfs nfs_url=nfs://h/e filename=f replaced by the target"},
	}
	for _, tt := range tests {
		jobs, err := parseTest("[j]\n" + tt.text + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if _, note, err := jobs[0].FileTarget(); err != nil || note != tt.note {
			t.Errorf("%q: note %q, %v; want %q", tt.text, note, err, tt.note)
		}
		if got := jobs[0].TargetNote(); got != tt.replaced {
			t.Errorf("%q: --target note %q, want %q", tt.text, got, tt.replaced)
		}
	}
}

// TestEngineOptionsRefused: refused at parse, whatever the target: an engine's option with
// another engine (as fio refuses it), and any password, which no error may echo.
func TestEngineOptionsRefused(t *testing.T) {
	const secret = "s3cret"
	tests := []struct{ name, text, err string }{
		{"uri without nbd", "uri=nbd://h/e", "uri= is an option of fio's ioengine=nbd, and this job's ioengine is psync (fio's default)"},
		{"uri with another engine", "ioengine=libaio\nuri=nbd://h/e", "this job's ioengine is libaio"},
		{"nfs_url without nfs", "ioengine=nbd\nuri=nbd://h/e\nnfs_url=nfs://h/e", "nfs_url= is an option of fio's ioengine=nfs"},
		{"libiscsi CHAP password", "ioengine=libiscsi\n" + `filename=iscsi\://bench%` + secret + `@127.0.0.1/iqn.x\:t/1`,
			`holds a CHAP password for user "bench": refused`},
		{"libiscsi CHAP password after ':'", "ioengine=libiscsi\n" + `filename=iscsi\://bench\:` + secret + `@127.0.0.1/iqn.x\:t/1`,
			"$VMSTORBENCH_ISCSI_SECRET, or give --target iscsi://bench@HOST/IQN/LUN?secret_file=PATH"},
		{"libiscsi password from the environment", "ioengine=libiscsi\n" + `filename=iscsi\://bench%${PW}@h/iqn.x\:t/1`, "CHAP password"},
		{"libiscsi password, ':' unescaped", "ioengine=libiscsi\nfilename=iscsi://bench%" + secret + "@h:3260/iqn.x:t/1", "several files"},
		{"nbd password", "ioengine=nbd\nuri=nbd://u:" + secret + "@h/e", "uri= of ioengine=nbd holds a password: refused"},
		{"nfs password", "ioengine=nfs\nnfs_url=nfs://u:" + secret + "@h/e", "nfs_url= of ioengine=nfs holds a password: refused"},
	}
	env := func(k string) (string, bool) { return secret, k == "PW" }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseJobFile("job.fio", strings.NewReader("[j]\n"+tt.text+"\n"), env)
			switch {
			case err == nil || !strings.Contains(err.Error(), tt.err):
				t.Errorf("error %v, want one with %q", err, tt.err)
			case strings.Contains(err.Error(), secret):
				t.Errorf("the error shows the password: %q", err)
			case strings.Contains(err.Error(), "\n"):
				t.Errorf("error of more than one line: %q", err)
			}
		})
	}
}

func TestRedactPassword(t *testing.T) {
	tests := []struct{ in, want string }{
		{"iscsi://bench%pw@h/iqn/1", "iscsi://bench%REDACTED@h/iqn/1"},
		{"iscsi://bench:pw@h/iqn/1", "iscsi://bench:REDACTED@h/iqn/1"},
		{"iscsi://bench@h/iqn/1", "iscsi://bench@h/iqn/1"},
		{"nfs://h/e/a@b", "nfs://h/e/a@b"},
		{"/var/tmp/a:b@c", "/var/tmp/a:b@c"},
	}
	for _, tt := range tests {
		if got := redactPassword(tt.in); got != tt.want {
			t.Errorf("redactPassword(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
