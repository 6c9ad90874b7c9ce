<#
.SYNOPSIS
Release build for Windows: a clean venv with the project and PyInstaller, the onedir build, its self-test,
then dist\ki2api-tray-<version>-windows-x64.zip.

.DESCRIPTION
The executable is windowed (no console), so the self-test has no stdout or stderr, exactly like a
double-click; its result is the exit code and the lines it writes to the log in a throw-away KI2API_HOME.
Afterwards the script times a headless start (`serve`) until /health answers.

.EXAMPLE
powershell -ExecutionPolicy Bypass -File build_scripts\build_windows.ps1 -Python py
#>
param(
    # The interpreter that creates the build venv: "python", "py", or a full path.
    [string]$Python = "python"
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$Root = Split-Path -Parent $PSScriptRoot
Set-Location $Root
$Venv = Join-Path $Root "build\venv-release"
$Out = Join-Path $Root "build\release"
$Bundle = Join-Path $Out "dist\ki2api-tray"
$Exe = Join-Path $Bundle "ki2api-tray.exe"

# $ErrorActionPreference does not cover the exit codes of programs, so every call goes through this.
function Invoke-Native {
    param([string]$What, [scriptblock]$Command)
    & $Command
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit code $LASTEXITCODE)" }
}

# Start the frozen app with its own KI2API_HOME and HOME, so it never touches the user's files or token.
function Start-App {
    param([string]$Arguments, [string]$Sandbox)
    $info = New-Object System.Diagnostics.ProcessStartInfo
    $info.FileName = $Exe
    $info.Arguments = $Arguments
    $info.UseShellExecute = $false
    $info.EnvironmentVariables["KI2API_HOME"] = Join-Path $Sandbox "ki2api"
    $info.EnvironmentVariables["USERPROFILE"] = Join-Path $Sandbox "home"
    $info.EnvironmentVariables["HOME"] = Join-Path $Sandbox "home"
    return [System.Diagnostics.Process]::Start($info)
}

foreach ($path in @($Venv, $Out)) {
    if (Test-Path $path) { Remove-Item -Recurse -Force $path }
}
Invoke-Native "creating the venv" { & $Python -m venv $Venv }
$VenvPython = Join-Path $Venv "Scripts\python.exe"
Invoke-Native "upgrading pip" { & $VenvPython -m pip install -q --upgrade pip }
Invoke-Native "installing the project" { & $VenvPython -m pip install -q ".[build]" }

$watch = [System.Diagnostics.Stopwatch]::StartNew()
Invoke-Native "PyInstaller" {
    & $VenvPython -m PyInstaller --noconfirm --clean --log-level WARN `
        --distpath (Join-Path $Out "dist") --workpath (Join-Path $Out "work") pyinstaller.spec
}
if (-not (Test-Path $Exe)) { throw "the build has no executable at $Exe" }
$sizeMb = [math]::Round((Get-ChildItem $Bundle -Recurse -File | Measure-Object Length -Sum).Sum / 1MB)
Write-Host ("build_windows: built in {0:N1} s; {1} is {2} MB" -f $watch.Elapsed.TotalSeconds, $Bundle, $sizeMb)

$Sandbox = Join-Path ([System.IO.Path]::GetTempPath()) ("ki2api-frozen-" + [guid]::NewGuid().ToString("N"))
New-Item -ItemType Directory -Force -Path (Join-Path $Sandbox "home") | Out-Null
$Log = Join-Path $Sandbox "ki2api\logs\ki2api-tray.log"
$server = $null
try {
    # 1. The self-test.
    $watch.Restart()
    $proc = Start-App "--selftest" $Sandbox
    if (-not $proc.WaitForExit(120000)) { $proc.Kill(); throw "--selftest did not finish within 120 s" }
    $selftestSeconds = $watch.Elapsed.TotalSeconds
    if (Test-Path $Log) {
        Get-Content $Log | Where-Object { $_ -match "ki2api_tray\.selftest" } | ForEach-Object { Write-Host "  $_" }
    }
    if ($proc.ExitCode -ne 0) {
        if (Test-Path $Log) { Get-Content $Log -Tail 30 | Write-Host }
        throw "--selftest exited with $($proc.ExitCode)"
    }
    Write-Host ("build_windows: --selftest passed without a console in {0:N2} s" -f $selftestSeconds)

    # 2. Time to a healthy server: launch `serve` on a free port and poll /health.
    $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
    $listener.Start(); $port = $listener.LocalEndpoint.Port; $listener.Stop()
    $watch.Restart()
    $server = Start-App "serve --port $port" $Sandbox
    $healthy = $false
    while ($watch.Elapsed.TotalSeconds -lt 30 -and -not $server.HasExited) {
        try {
            $response = Invoke-WebRequest -UseBasicParsing -TimeoutSec 2 "http://127.0.0.1:$port/health"
            if ($response.StatusCode -eq 200) { $healthy = $true; break }
        } catch {
            Start-Sleep -Milliseconds 50
        }
    }
    $healthSeconds = $watch.Elapsed.TotalSeconds
    if (-not $healthy) { throw "the frozen server did not answer /health within 30 s" }
    Write-Host ("build_windows: serve answered /health {0:N2} s after launch" -f $healthSeconds)
} finally {
    # A windowed process has no console to receive Ctrl-C; ending it is how Windows stops it too.
    if ($null -ne $server -and -not $server.HasExited) { $server.Kill(); $server.WaitForExit(10000) | Out-Null }
    Remove-Item -Recurse -Force $Sandbox -ErrorAction SilentlyContinue
}

$version = (& $VenvPython -c "import ki2api_tray; print(ki2api_tray.__version__)").Trim()
New-Item -ItemType Directory -Force -Path (Join-Path $Root "dist") | Out-Null
$archive = Join-Path $Root "dist\ki2api-tray-$version-windows-x64.zip"
if (Test-Path $archive) { Remove-Item -Force $archive }
Compress-Archive -Path $Bundle -DestinationPath $archive
Write-Host "build_windows: wrote $archive"
